"""Protocols as the papers define them: α-precision / β-recall / authenticity (Alaa et al.
2022) against an independent loop implementation and known limits; PPL (Karras et al.
2019) in the generator's own latent distribution, and in w where there is a mapping
network; the Inception Score's network named and never merged with the classifier's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.core.errors import BenchError
from bench.data.base import Dataset
from bench.features.base import FEATURES, FeatureExtractor
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.metrics.functional import alpha_precision_beta_recall, authenticity
from bench.metrics.functional.alpha_precision import alpha_grid, support_curve
from bench.metrics.ppl import (
    PPLOptions,
    path_lengths,
    resolve_path,
    slerp,
    slerp_norms,
    trimmed,
)
from bench.models.base import Generator
from bench.record.values import HI, LO, dumps, loads
from bench.report.leaderboard import build_leaderboard, render


# ---------------------------------------------------------------- α-precision, β-recall
def _quantile_loop(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), written out."""
    s = sorted(values)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def _alpha_beta_loops(real: np.ndarray, fake: np.ndarray, steps: int) -> tuple[float, float]:
    """IPα and IRβ from their definitions with plain loops: a ball around each sample's
    mean, radius the α-quantile of the sample's own distances to it."""
    def mean(rows):
        return [sum(r[j] for r in rows) / len(rows) for j in range(len(rows[0]))]

    def dist(r, c):
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(r, c, strict=True)))

    def integrated(own, other):
        c = mean(own)
        own_d = [dist(r, c) for r in own]
        other_d = [dist(r, c) for r in other]
        total = 0.0
        for i in range(steps):
            a = (i + 0.5) / steps
            radius = _quantile_loop(own_d, a)
            inside = sum(1 for d in other_d if d <= radius) / len(other_d)
            total += abs(inside - a)
        return 1 - 2 * total / steps

    real_l, fake_l = real.tolist(), fake.tolist()
    return integrated(real_l, fake_l), integrated(fake_l, real_l)


def _gauss(rng, n, d=16, shift=0.0, scale=1.0):
    return rng.standard_normal((n, d)) * scale + shift


def test_alpha_beta_matches_an_independent_loop_implementation():
    rng = np.random.default_rng(0)
    real, fake = _gauss(rng, 300, 5), _gauss(rng, 200, 5, shift=0.3, scale=1.2)
    for steps in (7, 50):
        v = alpha_precision_beta_recall(real, fake, steps=steps, authenticity=False)
        ip, ir = _alpha_beta_loops(real, fake, steps)
        assert v["alpha_precision"] == pytest.approx(ip, abs=1e-12)
        assert v["beta_recall_ball"] == pytest.approx(ir, abs=1e-12)  # the ball estimate
        assert set(v) == {"alpha_precision", "beta_recall", "beta_recall_ball"}


@pytest.mark.heavy  # thousands of points, seconds
def test_alpha_beta_limits_real_noise_and_collapse():
    rng = np.random.default_rng(1)
    train, held = _gauss(rng, 2000, 32), _gauss(rng, 2000, 32)
    # real against itself: P(α) is within 1/n of α at every α
    same = alpha_precision_beta_recall(train, train, authenticity=False)
    assert same["alpha_precision"] >= 1 - 2 / 2000 and same["beta_recall"] >= 1 - 2 / 2000
    # a fresh sample of the same distribution: P(α) close to the diagonal; the reference
    # codes' k-NN gate passes about half of the real samples, so IRβ is about 0.5
    v = alpha_precision_beta_recall(train, held)
    assert v["alpha_precision"] > 0.93 and 0.4 < v["beta_recall"] < 0.6
    assert v["beta_recall_ball"] > 0.93
    assert 0.5 < v["authenticity"] < 0.95
    # noise far from the data: outside every α-support, and no real sample in its β-supports
    far = alpha_precision_beta_recall(train, _gauss(rng, 1000, 32, shift=10.0))
    assert far["alpha_precision"] < 0.05 and far["beta_recall"] < 0.05
    assert far["authenticity"] == 1.0
    # samples all at the centre are *too* typical: P(α) = 1 for every α, also penalised; the
    # gated IRβ is not (it beats the held-out value: why its ideal is the held-out row's)
    centre = alpha_precision_beta_recall(train, _gauss(rng, 1000, 32, scale=0.3), authenticity=False)
    assert centre["alpha_precision"] < 0.05 and centre["beta_recall_ball"] < 0.05
    assert centre["beta_recall"] > v["beta_recall"]


@pytest.mark.heavy  # thousands of points, seconds
def test_copies_authenticity_zero_and_what_beta_recall_sees():
    rng = np.random.default_rng(2)
    train, held = _gauss(rng, 2000, 64), _gauss(rng, 2000, 64)
    held_v = alpha_precision_beta_recall(train, held)
    # a copy generator (the training set replayed): faithful and diverse by α/β, and only
    # authenticity says it copies; that is why the paper has a third number
    copy = alpha_precision_beta_recall(train, train[rng.integers(0, 2000, 1000)])
    assert copy["authenticity"] == 0.0
    assert copy["alpha_precision"] > 0.9 and copy["beta_recall_ball"] > 0.9
    assert copy["beta_recall"] > 0.45  # the replayed real samples pass the k-NN gate
    # copies of 5 training points: still inside the real supports (α-precision well above
    # far noise), but few real samples are nearer to one of them than to a real neighbour
    # (IRβ), and their β-supports are balls the real data mostly lie outside of (the ball)
    few = train[rng.permutation(2000)[:5]][rng.integers(0, 5, 1000)]
    v = alpha_precision_beta_recall(train, few)
    assert v["authenticity"] == 0.0
    assert v["beta_recall"] < 0.05 < 0.4 < held_v["beta_recall"]
    assert v["beta_recall_ball"] < 0.4 < held_v["beta_recall_ball"] - 0.5
    assert v["alpha_precision"] > 0.5
    # the third number is the `authenticity` function's, on the same inputs
    assert v["authenticity"] == authenticity(train, few)


def test_alpha_beta_curves_and_bootstrap():
    rng = np.random.default_rng(3)
    real, fake = _gauss(rng, 500, 8), _gauss(rng, 400, 8, scale=1.3)
    values, d = alpha_precision_beta_recall(real, fake, steps=20, details=True)
    assert np.allclose(d.grid, alpha_grid(20)) and d.grid[0] == 0.025 and d.grid[-1] == 0.975
    for curve in (d.alpha_precision, d.beta_recall):
        assert np.all(np.diff(curve) >= 0) and curve.min() >= 0 and curve.max() <= 1
    # too wide: few generated samples inside the small real supports; R(β) is at most β
    # (the gate only removes real samples from the β-quantile's share)
    assert np.all(d.alpha_precision <= d.grid + 1e-12) and np.all(d.beta_recall <= d.grid + 1e-3)
    assert support_curve(d.real_to_real_centre, d.fake_to_real_centre, d.grid)[1] == values["alpha_precision"]
    assert d.authentic is not None and d.authentic.mean() == values["authenticity"]
    boot = d.bootstrap(50, seed=0)
    again = d.bootstrap(50, seed=0)
    for k in ("alpha_precision", "beta_recall"):
        assert boot[k].shape == (50,) and np.array_equal(boot[k], again[k])
        assert 0 < boot[k].std() < 0.1 and np.all((boot[k] >= 0) & (boot[k] <= 1))
    with pytest.raises(ValueError, match="feature dims differ"):
        alpha_precision_beta_recall(real, fake[:, :4])


class _Pixels(FeatureExtractor):
    """Flattened pixels / 255 as features, and a fixed projection as 10 'logits' (tests)."""

    has_logits = True

    def tag(self) -> str:
        return "test-pixels"

    def _forward(self, x):
        f = x.float().flatten(1) / 255.0
        w = torch.linspace(-1, 1, f.shape[1] * 10, device=f.device).view(f.shape[1], 10)
        return f, f @ w


@pytest.fixture
def pixels():
    with FEATURES.scoped({"test_pixels": _Pixels}):
        yield {"name": "test_pixels"}


def _digits() -> Dataset:
    from bench.data.digits import Digits

    return Digits().load()


def _ctx(tmp_path, seed: int = 0) -> Context:
    return Context(torch.device("cpu"), seed, Cache(tmp_path / "cache"), tmp_path / "artifacts",
                   progress=False)


@pytest.mark.heavy  # thousands of points, seconds
def test_alpha_precision_metric_values_intervals_and_artifacts(tmp_path, pixels):
    cls = METRICS.get("alpha_precision")
    assert cls.primary == "alpha_precision"
    assert cls.value("alpha_precision").ideal == "higher" and cls.value("alpha_precision").aspect == "quality"
    beta = cls.value("beta_recall")
    assert beta.ideal == "target" and beta.ref and beta.aspect == "diversity"
    assert cls.value("beta_recall_ball").role == "diagnostic"
    assert cls.value("authenticity") == METRICS.get("authenticity").value("authenticity")
    ds = _digits()
    real, held = ds.train_x.float().flatten(1) / 255, ds.val_x.float().flatten(1) / 255
    metric = cls(cls.Options.model_validate({"features": pixels, "bootstrap": 50}))
    ctx = _ctx(tmp_path)
    v = metric.score(real, held, ds, ctx)
    assert set(v) == {n + s for n in ("alpha_precision", "beta_recall", "authenticity")
                      for s in ("", LO, HI)} | {"beta_recall_ball"}
    for n in ("alpha_precision", "beta_recall", "authenticity"):
        assert 0 <= v[n + LO] <= v[n] <= v[n + HI] <= 1 and v[n + LO] < v[n + HI]
    assert v["alpha_precision"] > 0.85 and 0.3 < v["beta_recall"] < 0.7 and v["beta_recall_ball"] > 0.85
    # the same authenticity as the `authenticity` metric on the same features (one column)
    auth = METRICS.get("authenticity")(METRICS.get("authenticity").Options.model_validate(
        {"features": pixels}))
    assert auth.score(real, held, ds, ctx)["authenticity"] == v["authenticity"]
    table = pd.read_csv(tmp_path / "artifacts" / "alpha_beta_curves.csv")
    assert list(table.columns) == ["alpha", "alpha_precision", "beta_recall"] and len(table) == 100
    assert (tmp_path / "artifacts" / "alpha_beta_curves.png").stat().st_size > 1000
    # noise far from the data ranks below held-out real images on both
    noise = torch.rand(500, real.shape[1], generator=torch.Generator().manual_seed(0)) * 4 + 2
    nv = metric.score(real, noise, ds, ctx)
    assert nv["alpha_precision"] < 0.1 and nv["beta_recall"] < 0.1
    no_auth = cls(cls.Options.model_validate({"features": pixels, "authenticity": False,
                                              "bootstrap": 0}))
    assert set(no_auth.score(real, held, ds, ctx)) == {"alpha_precision", "beta_recall", "beta_recall_ball"}
    with pytest.raises(ValueError, match="at least 2 resamples"):
        cls.Options.model_validate({"bootstrap": 1})


@pytest.mark.heavy  # thousands of points, seconds
def test_alpha_precision_metric_runs_on_a_generator(tmp_path, pixels):
    from bench.models import MODELS
    from bench.models.base import BuildContext

    ds = _digits()
    src = MODELS.get("reference")
    gen = src(src.Options(kind="memorize", num_images=10)).build(
        ds, BuildContext(torch.device("cpu"), 0, Cache(tmp_path / "c"), progress=False))
    cls = METRICS.get("alpha_precision")
    v = cls(cls.Options.model_validate({"features": pixels, "num_samples": 300})).compute(
        gen, ds, _ctx(tmp_path))
    assert v["authenticity"] == 0.0  # ten training images replayed
    # ten images are the nearest generated image of few real images, and nearer than their
    # real neighbour of fewer still: IRβ near 0 (held-out real images: about 0.3 above, where
    # 539 generated images face 1,258 real ones); the ball estimate is below 0.85 too
    assert v["beta_recall"] < 0.1 and v["beta_recall_ball"] < 0.85


# ---------------------------------------------------------------- PPL
class GaussianOnly(Generator):
    """A generator defined only for N(0, I) latents: it refuses a z whose norm is far from
    sqrt(d), as a network trained on N(0, I) has never seen one. Smooth inside."""

    image_shape = (1, 8, 8)
    num_classes = 10

    def __init__(self, latent_dim: int = 64, seed: int = 0):
        self.latent_dim = latent_dim
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(64, latent_dim, generator=g)
        self.emb = torch.randn(10, 64, generator=g) * 0.3
        self.seen: list[torch.Tensor] = []

    def render_latent(self, z, labels):
        r = z.norm(dim=1) / math.sqrt(self.latent_dim)
        if bool(((r < 0.5) | (r > 1.5)).any()):
            raise ValueError(f"latent norms {r.min():.2f}..{r.max():.2f} x sqrt(d): outside N(0, I)")
        self.seen.append(z)
        x = torch.tanh(z @ self.w.T / math.sqrt(self.latent_dim) + self.emb[labels])
        return ((x + 1) * 127.5).view(-1, *self.image_shape)

    def sample_latent(self, z, labels):
        return self.render_latent(z, labels).round().to(torch.uint8)

    def sample(self, n, labels, seed):
        z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        return self.sample_latent(z, labels)


class UnitSphere(GaussianOnly):
    """Draws z on the unit sphere and refuses anything else."""

    latent_norm = "unit"

    def render_latent(self, z, labels):
        if not torch.allclose(z.norm(dim=1), torch.ones(len(z)), atol=1e-4):
            raise ValueError("z must be unit-norm")
        return super().render_latent(z * math.sqrt(self.latent_dim), labels)


class WithMapping(GaussianOnly):
    """A mapping network z -> w (8 x 16) and a synthesis from w; records the w it renders."""

    def __init__(self):
        super().__init__(latent_dim=16)
        self.m = torch.randn(16, 16, generator=torch.Generator().manual_seed(5))
        self.s = torch.randn(64, 16, generator=torch.Generator().manual_seed(6))
        self.ws: list[torch.Tensor] = []

    def map_latent(self, z, labels):
        return torch.tanh(z @ self.m / 4).unsqueeze(1).expand(-1, 8, -1)  # (n, layers, w_dim)

    def render_w(self, w, labels):
        self.ws.append(w)
        x = torch.tanh(w.mean(1) @ self.s.T)
        return ((x + 1) * 127.5).view(-1, *self.image_shape)


def _embed(imgs):
    return imgs.flatten(1) / 255.0


def test_slerp_norms_endpoints_norms_and_direction():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 32, generator=g), torch.randn(6, 32, generator=g) * 2
    assert torch.allclose(slerp_norms(a, b, torch.zeros(6, 1)), a, atol=1e-5)
    assert torch.allclose(slerp_norms(a, b, torch.ones(6, 1)), b, atol=1e-5)
    t = torch.rand(6, 1, generator=g)
    mid = slerp_norms(a, b, t)
    assert torch.allclose(mid.norm(dim=1, keepdim=True), torch.lerp(a.norm(dim=1, keepdim=True),
                                                                   b.norm(dim=1, keepdim=True), t), atol=1e-4)
    assert torch.allclose(mid / mid.norm(dim=1, keepdim=True), slerp(a, b, t), atol=1e-5)
    # parallel endpoints: no nan
    assert torch.isfinite(slerp_norms(a, 3 * a, t)).all()


def test_ppl_interpolates_within_the_generators_gaussian_latents():
    gen = GaussianOnly()
    z0, z1 = torch.randn(8, 64), torch.randn(8, 64)
    with pytest.raises(ValueError, match="outside N"):  # what versions 1-2 fed it
        gen.render_latent(slerp(z0, z1, torch.full((8, 1), 0.5)), torch.zeros(8, dtype=torch.long))
    means = []
    for seed in (0, 1, 2):
        d = path_lengths(gen, _embed, 10, num_samples=1500, seed=seed)
        assert d.shape == (1500,) and np.isfinite(d).all() and (d > 0).all()
        means.append(trimmed(d).mean())
    assert max(means) / min(means) < 1.1, means
    assert np.array_equal(path_lengths(gen, _embed, 10, num_samples=100, seed=4),
                          path_lengths(gen, _embed, 10, num_samples=100, seed=4))
    # the latents it was fed have the norms of N(0, I) draws (sqrt(64) = 8 on average)
    norms = torch.cat(gen.seen).norm(dim=1) / 8
    assert abs(float(norms.mean()) - 1) < 0.02 and 0.6 < float(norms.min()) and float(norms.max()) < 1.4


def test_ppl_unit_latents_end_sampling_and_w_space():
    unit = UnitSphere()
    d = path_lengths(unit, _embed, 10, num_samples=200)
    assert np.isfinite(d).all() and (d > 0).all()
    # end: t = 0, the first point of every pair is z0 itself
    gen = GaussianOnly()
    path_lengths(gen, _embed, 10, num_samples=20, batch_size=20, sampling="end", seed=7)
    g = torch.Generator().manual_seed(7)
    z0 = torch.randn(20, 64, generator=g)
    assert torch.allclose(gen.seen[0][:20], z0, atol=1e-5)
    # w: auto picks it where there is a mapping network, and interpolates linearly there
    mapped = WithMapping()
    assert mapped.has_mapping and not gen.has_mapping
    assert resolve_path(mapped, "auto", "auto") == ("w", "lerp")
    assert resolve_path(gen, "auto", "auto") == ("z", "slerp")
    assert resolve_path(mapped, "z", "lerp") == ("z", "lerp")
    d = path_lengths(mapped, _embed, 10, num_samples=64, batch_size=64, seed=1)
    assert np.isfinite(d).all() and mapped.ws and mapped.ws[0].shape == (128, 8, 16)
    with pytest.raises(BenchError, match="mapping network"):
        resolve_path(gen, "w", "auto")


def test_ppl_options_read_the_old_space_names():
    assert (PPLOptions.model_validate({"space": "slerp"}).space,
            PPLOptions.model_validate({"space": "slerp"}).interpolation) == ("z", "slerp")
    assert PPLOptions.model_validate({"space": "lerp"}).interpolation == "lerp"
    assert PPLOptions.model_validate({}).space == "auto"


def test_ppl_metric_on_a_gaussian_only_generator(tmp_path, pixels):
    ds = _digits()
    cls = METRICS.get("ppl")
    assert cls.version == "3"
    metric = cls(cls.Options.model_validate({"num_samples": 300, "features": pixels}))
    values = []
    for seed in (0, 1):
        ctx = _ctx(tmp_path, seed)
        v = metric.compute(GaussianOnly(), ds, ctx)
        assert np.isfinite(v["ppl"]) and v["ppl.lo"] <= v["ppl"] <= v["ppl.hi"]
        assert ctx.tags["ppl_path"] == "z slerp (gaussian z), full"
        values.append(v["ppl"])
    assert max(values) / min(values) < 1.2


# ---------------------------------------------------------------- Inception Score naming
def test_inception_score_names_its_network(tmp_path, pixels):
    ds = _digits()
    cls = METRICS.get("inception_score")
    # features without Inception logits: the fallback network's logits, under classifier_is_*
    metric = cls(cls.Options.model_validate({"features": pixels, "fallback": pixels,
                                             "num_samples": 200, "splits": 2}))
    ctx = _ctx(tmp_path)
    from bench.models import MODELS
    from bench.models.base import BuildContext

    gen = MODELS.get("reference")(MODELS.get("reference").Options()).build(
        ds, BuildContext(torch.device("cpu"), 0, Cache(tmp_path / "c"), progress=False))
    v = metric.compute(gen, ds, ctx)
    assert "classifier_is_mean" in v and "is_mean" not in v
    assert ctx.tags["is_network"] == "test-pixels"
    assert "published" in cls.value("is_mean").note and "bench.is_network" in cls.value("classifier_is_mean").note


def _run(model, metric, values, primary, start, **m):
    row = {"suite": "s", "cell_key": "k", "dataset": "d", "model": model, "metric": metric,
           "repeat": 0, "reference": False, "held_out": False, "values": values,
           "primary": primary, "start_time": start}
    row.update({f"m:{k}": x for k, x in m.items()})
    return row


def test_is_and_classifier_is_never_share_a_column():
    is_values = loads(dumps(METRICS.get("inception_score").values,
                            ["is_mean", "is_std", "classifier_is_mean", "classifier_is_std"]))
    runs = pd.DataFrame([
        _run("a", "inception_score", is_values, "is_mean", 0, is_mean=9.0, is_std=0.1),
        _run("b", "inception_score", is_values, "is_mean", 1, classifier_is_mean=9.0, classifier_is_std=0.1),
        # a second IS metric with another classifier: the same name, another value
        _run("a", "is_resnet", is_values, "is_mean", 2, classifier_is_mean=5.0, classifier_is_std=0.1),
        _run("b", "is_resnet", is_values, "is_mean", 3, classifier_is_mean=6.0, classifier_is_std=0.1),
    ])
    (t,) = build_leaderboard(runs)
    cols = set(t.mean.columns)
    assert "is_mean" in cols
    # equal numbers under different names stay apart: a's is_mean is not b's classifier IS
    assert t.mean.at["a", "is_mean"] == 9.0 and pd.isna(t.mean.at["b", "is_mean"])
    # two networks' classifier_is_mean disagree: one column per metric, never merged
    assert {"inception_score.classifier_is_mean", "is_resnet.classifier_is_mean"} <= cols
    assert pd.isna(t.mean.at["a", "inception_score.classifier_is_mean"])
    md = render([t])
    assert "is_mean ↑" in md and "is_resnet.classifier_is_mean ↑" in md
