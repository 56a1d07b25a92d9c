"""β-recall (Alaa et al., ICML 2022) against a transcription of the reference code, and
authenticity's rule against the reference codes' indexing."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from bench.metrics import METRICS
from bench.metrics.functional import alpha_precision_beta_recall, authenticity
from bench.metrics.functional.alpha_precision import BETA_GRID, beta_recall_curve


def synthcity_alpha_precision(X: np.ndarray, X_syn: np.ndarray) -> dict[str, float]:
    """Transcribed from synthcity 0.2.12, src/synthcity/metrics/eval_statistical.py,
    AlphaPrecision.metrics (the β-recall and authenticity lines; emb_center only enters
    α-precision). Same statements; n_jobs=-1 there only sets parallelism. The authors'
    ahmedmalaa/evaluating-generative-models metrics/evaluation.py::compute_alpha_precision
    computes the same curve (in float32) and integrates it as 1 - 2 Σ|β - R| (1/29)."""
    if len(X) != len(X_syn):
        raise RuntimeError("The real and synthetic data must have the same length")
    n_steps = 30
    alphas = np.linspace(0, 1, n_steps)
    synth_center = np.mean(X_syn, axis=0)
    beta_coverage_curve = []
    nbrs_real = NearestNeighbors(n_neighbors=2, n_jobs=1, p=2).fit(X)
    real_to_real, _ = nbrs_real.kneighbors(X)
    nbrs_synth = NearestNeighbors(n_neighbors=1, n_jobs=1, p=2).fit(X_syn)
    real_to_synth, real_to_synth_args = nbrs_synth.kneighbors(X)
    # Let us find closest real point to any real point, excluding itself (therefore 1 instead of 0)
    real_to_real = real_to_real[:, 1].squeeze()
    real_to_synth = real_to_synth.squeeze()
    real_to_synth_args = real_to_synth_args.squeeze()
    real_synth_closest = X_syn[real_to_synth_args]
    real_synth_closest_d = np.sqrt(np.sum((real_synth_closest - synth_center) ** 2, axis=1))
    closest_synth_Radii = np.quantile(real_synth_closest_d, alphas)
    for k in range(n_steps):
        beta_coverage = np.mean(
            (real_to_synth <= real_to_real) * (real_synth_closest_d <= closest_synth_Radii[k]))
        beta_coverage_curve.append(beta_coverage)
    authen = real_to_real[real_to_synth_args] < real_to_synth
    Delta_coverage_beta = 1 - np.sum(
        np.abs(np.array(alphas) - np.array(beta_coverage_curve))) / np.sum(alphas)
    authors = 1 - 2 * np.sum(np.abs(alphas - np.array(beta_coverage_curve))) * (alphas[1] - alphas[0])
    return {"beta_recall": float(Delta_coverage_beta), "beta_recall_authors": float(authors),
            "authenticity": float(np.mean(authen))}


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    n, d = 1000, 16
    real = rng.standard_normal((n, d))
    cases = {"fresh": (real, rng.standard_normal((n, d))),
             "shrunk": (real, 0.5 * rng.standard_normal((n, d)))}
    half = rng.standard_normal((n, d))
    half[:, 0] = np.abs(half[:, 0])  # the half-space x_0 < 0 dropped
    cases["half"] = (real, half)
    cases["copies"] = (real, real[rng.permutation(n)])
    means = 4 * rng.standard_normal((10, d))
    modes = means[rng.integers(0, 10, n)] + rng.standard_normal((n, d))
    cases["modes_5_of_10"] = (modes, means[rng.integers(0, 5, n)] + rng.standard_normal((n, d)))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def measured():
    return {k: (alpha_precision_beta_recall(r, f), synthcity_alpha_precision(r, f))
            for k, (r, f) in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_beta_recall_equals_synthcity(measured, case):
    ours, ref = measured[case]
    assert ours["beta_recall"] == pytest.approx(ref["beta_recall"], abs=1e-3)
    # the authors' normalisation differs only by the factor 30/29 on 1 - IRβ
    assert ref["beta_recall_authors"] == pytest.approx(1 - 30 / 29 * (1 - ref["beta_recall"]), abs=1e-12)


def test_beta_recall_qualitative(measured):
    v = {k: ours["beta_recall"] for k, (ours, _) in measured.items()}
    assert v["copies"] > 0.99
    assert 0.4 < v["fresh"] < 0.6
    assert v["half"] < v["fresh"] and v["modes_5_of_10"] < 0.35
    # the gate rewards a too-narrow model: sd 0.5 scores above fresh data (why the ideal is →ref)
    assert v["shrunk"] > v["fresh"]
    # the ball estimate (diagnostic) is near 1 for fresh data and near 0 for sd 0.5
    fresh, shrunk = measured["fresh"][0], measured["shrunk"][0]
    assert fresh["beta_recall_ball"] > 0.9 and shrunk["beta_recall_ball"] < 0.1


def test_authenticity_rule_differs_from_the_reference_indexing(measured):
    ours, ref = measured["fresh"]
    assert ours["authenticity"] == authenticity(*CASES["fresh"])
    assert ours["authenticity"] == pytest.approx(0.683, abs=1e-9)  # the paper's per-sample rule
    assert ref["authenticity"] == pytest.approx(0.513, abs=1e-9)  # real_to_real[synthetic index]
    assert measured["copies"][0]["authenticity"] == measured["copies"][1]["authenticity"] == 0.0


def test_chunking_curve_and_bootstrap():
    real, fake = CASES["modes_5_of_10"]
    values, d = alpha_precision_beta_recall(real, fake, steps=20, authenticity=False, details=True)
    chunked = alpha_precision_beta_recall(real, fake, steps=20, authenticity=False, chunk_size=7)
    assert chunked == values
    assert beta_recall_curve(d.real_gate, d.real_nn_to_fake_centre, BETA_GRID)[1] == values["beta_recall"]
    assert np.all(np.diff(d.beta_recall) >= 0) and np.all(d.beta_recall <= d.grid + 1e-3)
    boot = d.bootstrap(40, seed=1)
    assert np.array_equal(boot["beta_recall"], d.bootstrap(40, seed=1)["beta_recall"])
    assert 0.002 < boot["beta_recall"].std() < 0.05
    assert abs(boot["beta_recall"].mean() - values["beta_recall"]) < 3 * boot["beta_recall"].std()


def test_declarations():
    cls = METRICS.get("alpha_precision")
    beta = cls.value("beta_recall")
    assert (beta.role, beta.ideal, beta.ref, beta.aspect) == ("score", "target", True, "diversity")
    assert cls.value("beta_recall_ball").role == "diagnostic"
    assert cls.version == "2"
