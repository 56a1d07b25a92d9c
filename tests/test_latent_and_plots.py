"""PPL (latent access, validated up front) and the embedding plot, on the built-in cGAN."""

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.metrics.ppl import slerp
from bench.run.runner import run_suite

SUITE = """\
name: latent
datasets:
  digits: {source: digits}
models:
  gan: {source: cgan, steps: 30, width: 8}
  real: {source: reference}
metrics:
  ppl: {num_samples: 64, features: {name: classifier, classifier: {epochs: 2}}}
  embedding_plot: {num_samples: 100, features: {name: classifier, classifier: {epochs: 2}}}
cells:
  - models: [gan]
  - models: [real]
    metrics: [embedding_plot]
"""


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    t0, t1 = slerp(a, b, torch.zeros(5, 1)), slerp(a, b, torch.ones(5, 1))
    assert torch.allclose(t0, a / a.norm(dim=1, keepdim=True), atol=1e-5)
    assert torch.allclose(t1, b / b.norm(dim=1, keepdim=True), atol=1e-5)
    assert torch.allclose(slerp(a, b, torch.full((5, 1), 0.3)).norm(dim=1), torch.ones(5), atol=1e-5)


def test_ppl_on_a_model_without_latents_is_a_validation_error(write_suite):
    with pytest.raises(BenchError, match="metric 'ppl' needs a generator that exposes its latent"):
        load_suite(write_suite(SUITE.replace("    metrics: [embedding_plot]\n", "")))


def test_ppl_and_embedding_plot_run(write_suite, tracking_uri):
    report = run_suite(load_suite(write_suite(SUITE)), tracking_uri=tracking_uri, progress=False)
    assert report.ok, report.summary()
    by = {(o.cell.model.key, o.cell.metric.key): o for o in report.outcomes}
    ppl = by[("gan", "ppl")].values["ppl"].x
    assert np.isfinite(ppl) and ppl > 0
    client = MlflowClient(tracking_uri)
    for key in (("gan", "embedding_plot"), ("real", "embedding_plot")):
        arts = {a.path for a in client.list_artifacts(by[key].run_id)}
        assert "embedding.png" in arts
    assert client.get_run(by[("gan", "embedding_plot")].run_id).data.tags["bench.embedding_method"] == "t-SNE"
