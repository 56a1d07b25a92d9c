"""The protocols as the papers define them: augmentation with a generator trained on each
real subset (Shmelkov et al. 2018, Table 4) beside one trained on everything (Fig. 5), class
balancing with a generator that never saw the withheld minority images, the skin-lesion
study's "synthetic images for every class" arm, and latent projection as a memorisation test.

Known answers on the bundled digits. The GANs are tiny (a few steps): these tests check
what a generator is trained on and how the values are named, while the known answers about
the *values* use stand-ins whose behaviour is exact (a "trainable" source that replays the
data it is trained on; generators made of a bank of images).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from torch import nn

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.data.base import Dataset
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.metrics.sampling import balanced_counts, subset_by_counts
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.cgan import CGAN
from bench.models.reference import ReferenceGenerator, ReferenceOptions
from bench.models.torch_generator import TorchGenerator
from bench.run.runner import run_suite

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
TINY_GAN = {"steps": 20, "width": 8}  # seconds on 2 CPU cores: what is trained on, not quality


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Cache:
    """One cache for the module: the real classifier and real-only arms are shared, as in a suite."""
    return Cache(tmp_path_factory.mktemp("paper") / "cache")


def context(cache: Cache, tmp: Path, source: ModelSource | None = None) -> Context:
    return Context(CPU, 0, cache, tmp / "artifacts", progress=False, source=source,
                   generator_seed=0 if source is not None else None)


def metric(name: str, **opts):
    cls = METRICS.get(name)
    return cls(cls.Options(**opts))


class Recording:
    """Wraps `build_on` of a source class: records the data each call trains on."""

    def __init__(self, monkeypatch, cls: type[ModelSource]):
        self.calls: list[Dataset] = []
        original = cls.build_on

        def build_on(src, data, ctx):
            self.calls.append(data)
            return original(src, data, ctx)

        monkeypatch.setattr(cls, "build_on", build_on)


class Replay(ModelSource):
    """A "trainable" stand-in whose training copies its data: its generator replays the
    training images it was given (a perfect memoriser of exactly that data)."""

    trainable = True

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        return ReferenceGenerator(dataset, ReferenceOptions(kind="real"))


# ---------------------------------------------------------------- data views
def test_restrict_train_is_a_dataset_of_its_own(digits):
    idx = subset_by_counts(digits.train_y, np.full(10, 5), seed=0)
    view = digits.restrict_train(idx, "test")
    assert view.class_counts().tolist() == [5] * 10 and torch.equal(view.val_x, digits.val_x)
    assert view.digest not in (digits.digest, digits.restrict_train(idx[:-1]).digest)
    assert view.digest == digits.restrict_train(idx.clone()).digest  # same subset, same digest
    assert digits.restrict_train(torch.arange(len(digits.train_y))) is digits  # full: itself
    assert "50 of 1258" in view.notes["train_subset"]


def test_trained_baseline_cache_keeps_one_entry_per_subset(digits, tmp_path):
    cache = Cache(tmp_path / "cache")
    ctx = BuildContext(CPU, 0, cache, progress=False)
    src = CGAN(CGAN.Options(**TINY_GAN))
    a = digits.restrict_train(subset_by_counts(digits.train_y, np.full(10, 20), seed=0))
    b = digits.restrict_train(subset_by_counts(digits.train_y, np.full(10, 20), seed=1))
    for view in (a, b, a):
        src.build_on(view, ctx)
    assert cache.misses["cgan"] == 2 and cache.hits["cgan"] == 1
    with pytest.raises(BenchError, match="only trainable sources"):
        ModelSource.build_on(ReplayNot(), a, ctx)


class ReplayNot(ModelSource):
    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        raise AssertionError("never built")


# ---------------------------------------------------------------- augmentation: Table 4
VALIDATE = """\
name: t4
datasets:
  digits: {source: digits}
models:
  cgan: {source: cgan, steps: 20, width: 8}
  real: {source: reference, kind: real}
metrics:
  table4: {source: augmentation, generator_data: subset, fractions: [0.1]}
  fig5: {source: augmentation, fractions: [0.1]}
"""


def test_subset_is_refused_for_a_model_the_suite_cannot_train(write_suite):
    with pytest.raises(BenchError) as e:
        load_suite(write_suite(VALIDATE))
    msg = str(e.value)
    assert "model 'real'" in msg and "metric 'table4'" in msg  # model and metric
    assert "generator_data: subset" in msg and "cannot be trained" in msg  # why
    assert "exclude: [{model: real, metric: table4}]" in msg and "generator_data: full" in msg  # fix
    assert "fig5" not in msg and "model 'cgan'" not in msg
    ok = VALIDATE + "cells:\n  - models: [cgan]\n  - models: [real]\n    metrics: [fig5]\n"
    assert len(load_suite(write_suite(ok)).cells) == 3


def test_subset_setting_trains_on_the_real_arms_subset(digits, cache, tmp_path, monkeypatch):
    rec = Recording(monkeypatch, CGAN)
    src = CGAN(CGAN.Options(**TINY_GAN))
    gen = src.build(digits, BuildContext(CPU, 0, cache, progress=False))
    opts = {"classifier": {"epochs": 2}, "fractions": [0.1, 1.0], "num_generated": 200}
    full = metric("augmentation", **opts).compute(gen, digits, context(cache, tmp_path, src))
    assert not rec.calls  # Fig. 5: the model as given
    sub = metric("augmentation", generator_data="subset", **opts).compute(
        gen, digits, context(cache, tmp_path, src))
    counts = balanced_counts(round(0.1 * len(digits.train_y)), digits.class_counts())
    idx = subset_by_counts(digits.train_y, counts, seed=0)
    assert [len(d.train_y) for d in rec.calls] == [len(idx), len(digits.train_y)]
    assert torch.equal(rec.calls[0].train_x, digits.train_x[idx])  # the real arm's subset
    assert rec.calls[1] is digits  # fraction 1: the subset is the training split
    # the two settings never share a column, except the real-only arm
    assert {"mean_aug_gain", "aug_gain_at_0.1", "aug_acc_at_1"} <= set(full)
    assert {"mean_aug_gain_subset", "aug_gain_subset_at_0.1", "aug_acc_subset_at_1"} <= set(sub)
    assert not {k for k in sub if k.startswith(("mean_aug_gain.", "aug_gain_at", "aug_acc_at"))}
    assert full["real_acc_at_0.1"] == sub["real_acc_at_0.1"]
    # at fraction 1 both settings use the same generator (one cache entry): the same answer
    assert sub["aug_gain_subset_at_1"] == full["aug_gain_at_1"]
    cls = METRICS.get("augmentation")
    assert cls.value("mean_aug_gain_subset").role == "score"
    assert cls.value("aug_gain_subset_at_0.1").role == "diagnostic"
    assert cls.value("real_acc_at_0.1").role == "reference"


def test_a_generator_that_saw_only_the_subset_adds_less_than_one_that_saw_everything(
        digits, cache, tmp_path):
    # Replay "trained" on everything augments the 10% subset with all other real images;
    # "trained" on the subset it can only repeat the subset: Table 4 <= Fig. 5
    src = Replay()
    opts = {"classifier": {"epochs": 10}, "fractions": [0.1], "num_generated": 600}
    full = metric("augmentation", **opts).compute(src.build(digits, None), digits,
                                                  context(cache, tmp_path, src))
    sub = metric("augmentation", generator_data="subset", **opts).compute(
        src.build(digits, None), digits, context(cache, tmp_path, src))
    # measured (seed 0): real 0.950, + all other real images 0.983, + copies of the subset 0.952
    assert full["aug_gain_at_0.1"] > 0.02
    assert full["aug_gain_at_0.1"] >= sub["aug_gain_subset_at_0.1"] + 0.02
    assert abs(sub["aug_gain_subset_at_0.1"]) < 0.02  # copies of the subset: about no gain


def test_subset_without_a_trainable_source_is_an_error(digits, cache, tmp_path):
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="real"))
    with pytest.raises(BenchError, match="needs a trainable model source"):
        metric("augmentation", generator_data="subset", fractions=[0.1]).compute(
            gen, digits, context(cache, tmp_path))


# ---------------------------------------------------------------- balancing
class Unusable(Generator):
    """The suite's generator, which leak-free balancing must not sample."""

    image_shape, num_classes = (1, 8, 8), 10

    def sample(self, n, labels, seed):
        raise AssertionError("balancing sampled the generator trained on all images")


def test_balancing_trains_a_trainable_source_on_the_imbalanced_split(digits, cache, tmp_path,
                                                                     monkeypatch):
    rec = Recording(monkeypatch, CGAN)
    src = CGAN(CGAN.Options(**TINY_GAN))
    ctx = context(cache, tmp_path, src)
    m = metric("balancing", classifier={"epochs": 2}, synthetic_only=False)
    v = m.compute(Unusable(), digits, ctx)
    imbalanced, *_ = m.plan(digits)
    assert len(rec.calls) == 1
    assert rec.calls[0].class_counts().tolist() == imbalanced.tolist()
    assert imbalanced[5:].tolist() == [-(-c // 10) for c in digits.class_counts()[5:]]
    assert ctx.tags["balancing_leak"] == "none"
    assert {"augmented_all_acc", "augmented_all_bacc", "augmented_all_minority_recall"} <= set(v)
    assert "synthetic_only_bacc" not in v
    assert METRICS.get("balancing").value("augmented_all_bacc").role == "diagnostic"
    assert not [f for f in ctx.flags if f.kind == "balancing_leak"]  # trained leak-free


def test_balancing_tags_a_model_the_suite_did_not_train(digits, cache, tmp_path):
    ctx = context(cache, tmp_path)
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="real"))
    with pytest.warns(RuntimeWarning, match="may have seen the minority images withheld"):
        v = metric("balancing", classifier={"epochs": 2}, synthetic_only=False).compute(gen, digits, ctx)
    assert ctx.tags["balancing_leak"] == "possible"
    # the tag is shown on no board: the cell also carries a warning flag on the ranked gain
    (flag,) = [f for f in ctx.flags if f.kind == "balancing_leak"]
    assert flag.value == "balancing_gain_over_oversampled" and not flag.gate and flag.reason
    # real images for every class, topped up to one common count: balanced
    assert v["augmented_all_bacc"] > v["imbalanced_bacc"]


class Trainings:
    """Records every classifier the protocol metrics train: (desc, labels, images)."""

    def __init__(self, monkeypatch):
        import bench.metrics._protocol as protocol

        self.calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        original = protocol.train_classifier

        def train(cfg, x, y, *args, desc: str = "", **kw):
            self.calls.append((desc, y.clone(), x.clone()))
            return original(cfg, x, y, *args, desc=desc, **kw)

        monkeypatch.setattr(protocol, "train_classifier", train)

    def one(self, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
        (call,) = [(y, x) for d, y, x in self.calls if d == desc]
        return call


@pytest.mark.filterwarnings("ignore:balancing. the model was not trained:RuntimeWarning")
def test_balancing_gain_is_measured_against_oversampled_real(digits, tmp_path, monkeypatch):
    """Augmented-all is balanced; the oversampled-real arm has balanced-gen's class counts
    from the imbalanced real images alone, is shared across models, and the ranked gain is
    balanced-gen's over it (the gain over the imbalanced set is a diagnostic)."""
    fresh = Cache(tmp_path / "cache")  # every arm trains here, so each training is seen
    rec = Trainings(monkeypatch)
    m = metric("balancing", classifier={"epochs": 1}, synthetic_only=False)
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="real"))
    v = m.compute(gen, digits, context(fresh, tmp_path / "a"))
    imbalanced, target, _, minority = m.plan(digits)
    k = digits.num_classes

    y, _ = rec.one("train on imbalanced real + generated for every class")
    every = torch.bincount(y, minlength=k)
    assert every.max() == every.min() == 2 * target.max()  # imbalance ratio 1

    y, x = rec.one("train on oversampled real")
    assert torch.bincount(y, minlength=k).tolist() == target.tolist()
    for c in minority:  # the top-up repeats the few real minority images, nothing new
        assert len(torch.unique(x[y == c].flatten(1), dim=0)) <= imbalanced[c] < target[c]

    assert v["balancing_gain_over_oversampled"] == pytest.approx(
        v["balanced_gen_bacc"] - v["oversampled_real_bacc"])
    assert v["balancing_gain"] == pytest.approx(v["balanced_gen_bacc"] - v["imbalanced_bacc"])
    cls = METRICS.get("balancing")
    assert cls.primary == "balancing_gain_over_oversampled"
    assert {n: cls.value(n).role for n in ("balancing_gain_over_oversampled", "balancing_gain",
                                           "balanced_gen_bacc", "augmented_all_bacc",
                                           "oversampled_real_bacc", "imbalanced_bacc",
                                           "balanced_real_bacc")} == {
        "balancing_gain_over_oversampled": "score", "balancing_gain": "diagnostic",
        "balanced_gen_bacc": "diagnostic", "augmented_all_bacc": "diagnostic",
        "oversampled_real_bacc": "reference", "imbalanced_bacc": "reference",
        "balanced_real_bacc": "reference"}

    # another model on the same cache: the real-only arms (oversampled included) are reused
    rec.calls.clear()
    other = ReferenceGenerator(digits, ReferenceOptions(kind="mode_drop"))
    w = m.compute(other, digits, context(fresh, tmp_path / "b"))
    assert all("generated" in d for d, *_ in rec.calls), [d for d, *_ in rec.calls]
    assert w["oversampled_real_bacc"] == v["oversampled_real_bacc"]


# ---------------------------------------------------------------- latent projection
class Bank(nn.Module):
    """G(z, y) = softmax(beta z) @ (the bank's images of class y): at a code close to a one-hot
    e_i it renders bank image i exactly; anything else is a blend of the class's images."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, k: int, beta: float = 4.0):
        super().__init__()
        m = int(torch.bincount(labels, minlength=k).max())
        bank = torch.zeros(k, m, *images.shape[1:])
        for c in range(k):
            x = images[labels == c].float() / 127.5 - 1
            bank[c] = x[torch.arange(m) % len(x)]
        self.register_buffer("bank", bank)
        self.latent_dim, self.beta = m, beta

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nm,nm...->n...", torch.softmax(self.beta * z, dim=1), self.bank[y])


def bank_generator(images: torch.Tensor, digits: Dataset) -> TorchGenerator:
    net = Bank(images, digits.train_y, digits.num_classes)
    return TorchGenerator(net, image_shape=digits.image_shape, num_classes=digits.num_classes,
                          latent_dim=net.latent_dim, label_input="index", output_range="[-1, 1]",
                          batch_size=256, device=CPU)


def test_latent_projection_finds_memorised_training_images(digits, cache, tmp_path):
    lp = metric("latent_projection", classifier={"epochs": 5}, per_class=4, steps=150)
    memoriser = lp.compute(bank_generator(digits.train_x, digits), digits, context(cache, tmp_path))
    noise = torch.randint(0, 256, digits.train_x.shape, generator=torch.Generator().manual_seed(0),
                          dtype=torch.uint8)
    ctx = context(cache, tmp_path / "noise")
    blind = lp.compute(bank_generator(noise, digits), digits, ctx)
    assert memoriser["projection_train_distance"] < 0.01  # its training images, reproduced
    assert memoriser["projection_gap.lo"] > 0.02  # clearly positive: memorisation
    assert blind["projection_gap.lo"] < 0 < blind["projection_gap.hi"]  # reproduces neither
    assert blind["projection_train_distance"] > 10 * memoriser["projection_heldout_distance"]
    assert ctx.tags["projection_search"] == "adam" and ctx.tags["projection_map_method"] in (
        "UMAP", "t-SNE")
    arts = {p.name for p in (tmp_path / "noise" / "artifacts").iterdir()}
    assert {"latent_projection.png", "latent_projection_map.png", "latent_projection.csv"} <= arts


class NoGrad(Generator):
    """Latent access without gradients: projection falls back to random search."""

    def __init__(self, base: TorchGenerator):
        self.base, self.image_shape, self.num_classes = base, base.image_shape, base.num_classes
        self.latent_dim = base.latent_dim

    def sample(self, n, labels, seed):
        return self.base.sample(n, labels, seed)

    def sample_latent(self, z, labels):
        return self.base.sample_latent(z, labels)


def test_latent_projection_without_gradients_searches_at_random(digits, cache, tmp_path):
    ctx = context(cache, tmp_path)
    v = metric("latent_projection", classifier={"epochs": 5}, per_class=1, steps=20,
               restarts=4).compute(NoGrad(bank_generator(digits.train_x, digits)), digits, ctx)
    assert ctx.tags["projection_search"] == "random" and np.isfinite(v["projection_gap"])


def test_latent_projection_refuses_missing_perceptual_weights(tmp_path):
    with pytest.raises(BenchError, match="never downloaded"):
        metric("latent_projection", perceptual={"path": str(tmp_path / "vgg16.pth")}).check()


def test_latent_projection_with_local_vgg_weights(digits, cache, tmp_path):
    from torchvision.models import vgg16

    path = tmp_path / "vgg16_features.pth"
    torch.manual_seed(0)
    torch.save(vgg16(weights=None).features.state_dict(), path)  # random, local: only the plumbing
    lin = tmp_path / "lin.pth"  # LPIPS's learned heads, required
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1)
                for i, c in enumerate((64, 128, 256, 512, 512))}, lin)
    ctx = context(cache, tmp_path)
    v = metric("latent_projection", per_class=1, steps=2, restarts=2,
               perceptual={"path": str(path), "lpips": str(lin), "resize": 32}).compute(
        bank_generator(digits.train_x, digits), digits, ctx)
    assert ctx.tags["projection_distance"] == "lpips-vgg16@32+pixel" and np.isfinite(v["projection_gap"])


# ---------------------------------------------------------------- through the runner
RUNNER = """\
name: paper
seed: 0
datasets:
  digits: {source: digits}
models:
  gan: {source: cgan, steps: 20, width: 8}
  real: {source: reference, kind: real}
metrics:
  table4:
    source: augmentation
    generator_data: subset
    classifier: {epochs: 2}
    fractions: [0.1]
    num_generated: 100
  balancing:
    classifier: {epochs: 2}
    synthetic_only: false
  latent_projection:
    classifier: {epochs: 2}
    per_class: 1
    steps: 10
    restarts: 2
cells:
  - models: [gan]
  - models: [real]
    metrics: [balancing]
"""


@pytest.mark.filterwarnings("ignore:balancing. the model was not trained:RuntimeWarning")
def test_paper_protocols_through_the_runner(write_suite, tracking_uri):
    report = run_suite(load_suite(write_suite(RUNNER)), tracking_uri=tracking_uri, progress=False)
    assert report.ok and report.count("finished") == 4, report.summary()
    client = MlflowClient(tracking_uri)
    runs = {(o.cell.model.key, o.cell.metric.key): client.get_run(o.run_id) for o in report.outcomes}
    t4 = runs[("gan", "table4")].data
    assert "mean_aug_gain_subset" in t4.metrics and "mean_aug_gain" not in t4.metrics
    assert t4.tags["bench.primary"] == "mean_aug_gain_subset"
    assert runs[("gan", "balancing")].data.tags["bench.balancing_leak"] == "none"
    assert runs[("real", "balancing")].data.tags["bench.balancing_leak"] == "possible"
    leak = [f for f in json.loads(runs[("real", "balancing")].data.tags["bench.flags"])
            if f["kind"] == "balancing_leak"]  # the cell's flag, shown on the board
    assert leak and leak[0]["value"] == "balancing_gain_over_oversampled"
    assert "balancing_leak" not in runs[("gan", "balancing")].data.tags.get("bench.flags", "")
    lp = runs[("gan", "latent_projection")]
    assert json.loads(lp.data.tags["bench.values"])["projection_gap"] == {
        "role": "score", "ideal": "target", "aspect": "memorisation", "target": 0.0, "ref": True}
    arts = {a.path for a in client.list_artifacts(lp.info.run_id)}
    assert {"latent_projection.png", "latent_projection_map.png"} <= arts
