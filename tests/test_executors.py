"""Executors never change results: the same suite and seeds give the same numbers in this
process, in worker processes, on a local 2-CPU Ray and through submitit's local backend.
Multi-process executors refuse a SQLite store; a worker that dies fails only its cell."""

import pytest
from mlflow import MlflowClient

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.executors import EXECUTORS
from bench.run.runner import run_suite

SUITE = """\
name: exec
datasets:
  digits: {source: digits}
models:
  real: {source: reference}
  noisy: {source: reference, kind: noise, sigma: 0.3}
metrics:
  gan_test: {classifier: {epochs: 3}}
  fid: {features: {name: classifier, classifier: {epochs: 3}}}
"""


def _values(report):
    assert report.ok, report.summary()
    return {o.cell.label: o.values for o in report.outcomes}


def _make(name, **opts):
    cls = EXECUTORS.get(name)
    return cls(cls.Options(**opts))


def test_multiprocess_executor_refuses_sqlite(write_suite, tracking_uri, tmp_path):
    with pytest.raises(BenchError, match="Start a tracking server"):
        run_suite(load_suite(write_suite(SUITE)), tracking_uri=tracking_uri, progress=False,
                  executor=_make("local", workers=2))
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run was created


@pytest.mark.slow
def test_every_executor_gives_the_same_numbers(write_suite, server, tmp_path):
    path = write_suite(SUITE)
    runs = {}
    executors = {"inline": _make("local"), "pool": _make("local", workers=2),
                 "ray": _make("ray", local_cpus=2),
                 "slurm": _make("slurm", cluster="local", folder=tmp_path / "submitit")}
    for name, ex in executors.items():
        runs[name] = _values(run_suite(load_suite(path), tracking_uri=server, force=True,
                                       progress=False, cache_dir=str(tmp_path / f"c-{name}"),
                                       executor=ex))
    for name in ("pool", "ray", "slurm"):
        assert runs[name].keys() == runs["inline"].keys()
        for cell, vals in runs["inline"].items():
            for k, v in vals.items():
                # Ray runs each task with OMP_NUM_THREADS=num_cpus: a different float reduction
                # order in classifier training moves values in the 3rd-4th digit, no more
                assert runs[name][cell][k] == pytest.approx(v, rel=5e-3, abs=1e-6), (name, cell, k)
    client = MlflowClient(server)
    exp = client.get_experiment_by_name("exec")
    cells = client.search_runs([exp.experiment_id], "tags.`bench.kind` = 'cell'")
    assert len(cells) == 4 * len(executors) and {r.info.status for r in cells} == {"FINISHED"}


CRASHGEN = """\
import os, torch

class G(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 64)

    def forward(self, z, y):
        os._exit(3)  # the worker process dies, as on an out-of-memory kill
"""


@pytest.mark.slow
def test_a_dying_ray_worker_fails_only_its_cell(write_suite, server, tmp_path, monkeypatch):
    (tmp_path / "crashgen.py").write_text(CRASHGEN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # for the Ray workers
    monkeypatch.syspath_prepend(str(tmp_path))  # for validation here
    text = SUITE.replace("models:\n", 'models:\n  crash: {source: callable, target: "crashgen:G", latent_dim: 4}\n')
    text += "cells:\n  - metrics: [gan_test]\n"
    report = run_suite(load_suite(write_suite(text)), tracking_uri=server, progress=False,
                       executor=_make("ray", local_cpus=2))
    status = {o.cell.model.key: o.status for o in report.outcomes}
    assert status == {"crash": "failed", "real": "finished", "noisy": "finished"}
    crashed = next(o for o in report.outcomes if o.cell.model.key == "crash")
    assert "worker lost" in crashed.error
    client = MlflowClient(server)
    exp = client.get_experiment_by_name("exec")
    runs = client.search_runs([exp.experiment_id], "tags.`bench.model` = 'crash'")
    assert [r.info.status for r in runs] == ["FAILED"]  # not left RUNNING
