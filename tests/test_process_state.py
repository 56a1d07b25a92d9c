"""bench.evaluate leaves the caller's process as it found it (issue 28): the environment, the
levels of MLflow's loggers (the temporary store's schema messages are silenced only while it is
made), the plugin registries, and no generator kept alive by the output checks."""

from __future__ import annotations

import gc
import logging
import os

import numpy as np
import pytest
import torch

import bench
from bench.classifiers import CLASSIFIERS
from bench.data import DATASETS
from bench.executors import EXECUTORS
from bench.features import FEATURES
from bench.features.base import FeatureExtractor
from bench.infra import output_checks
from bench.metrics import METRICS
from bench.models import MODELS

REGISTRIES = {"classifiers": CLASSIFIERS, "datasets": DATASETS, "executors": EXECUTORS,
              "features": FEATURES, "metrics": METRICS, "models": MODELS}


def _loggers() -> dict[str, int]:
    """The own level of every MLflow and alembic logger (NOTSET: it inherits)."""
    names = {"mlflow", "mlflow.store", "alembic"} | {
        n for n in logging.Logger.manager.loggerDict if n.split(".")[0] in ("mlflow", "alembic")}
    return {n: logging.getLogger(n).level for n in sorted(names)}


def _state() -> dict[str, object]:
    # MLflow's own telemetry session id is set once per process by MLflow itself, whoever
    # calls it first; it is not bench's to restore
    env = {k: v for k, v in os.environ.items() if k != "_MLFLOW_TELEMETRY_SESSION_ID"}
    return {"env": env, "cwd": os.getcwd(),
            "registries": {k: dict(r.items()) for k, r in REGISTRIES.items()}}


class _Pixels(FeatureExtractor):
    """Flattened pixels / 255 (cheap, deterministic)."""

    def tag(self) -> str:
        return "test-pixels"

    def _forward(self, x):
        return x.float().flatten(1) / 255.0, None


def _digits(n: int, offset: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[offset:offset + n] * 255 / 16).round().astype(np.uint8)


def test_evaluate_leaves_env_loggers_and_registries_as_they_were():
    real, fake = _digits(200, 0), torch.from_numpy(_digits(120, 200)[:, None])

    class Gen:  # a generator object: the path that once went through os.environ
        def sample(self, n, labels, seed):
            g = torch.Generator().manual_seed(seed)
            return fake[torch.randint(0, len(fake), (n,), generator=g)]

    mlflow_level = logging.getLogger("mlflow").level
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # a caller's own choice, kept
    try:
        with FEATURES.scoped({"test_pixels": _Pixels}):
            before, levels = _state(), _loggers()
            res = bench.evaluate(real, Gen(), ["fid"], "test_pixels", num_samples=120)
            after, after_levels = _state(), _loggers()
            effective = logging.getLogger("mlflow").getEffectiveLevel()
        assert np.isfinite(res["fid"].value)
    finally:
        logging.getLogger("mlflow").setLevel(mlflow_level)
    assert after["env"] == before["env"]
    assert after["cwd"] == before["cwd"]
    assert after["registries"] == before["registries"]
    assert {n: lvl for n, lvl in after_levels.items() if n in levels} == levels
    assert effective == logging.WARNING


def test_output_checks_keep_no_generator_alive():
    class Slotted:  # refuses the record's attribute: kept beside it, weakly
        __slots__ = ("__weakref__",)

    g = Slotted()
    checks = output_checks.checks_of(g)
    assert output_checks.checks_of(g) is checks  # one record per live object
    key = id(g)
    del g
    gc.collect()
    assert key not in output_checks._NO_ATTR


@pytest.mark.parametrize("log", [False, True], ids=["in-memory", "mlflow"])
def test_run_suite_leaves_env_loggers_and_registries_as_they_were(tmp_path, log):
    """bench.run_suite, `bench run`'s API entry: into memory (log=False) and into an MLflow
    store (what `bench run` writes), the caller's process is the same after."""
    np.savez(tmp_path / "real.npz", images=_digits(200, 0))
    np.savez(tmp_path / "fake.npz", images=_digits(120, 200))
    suite = {"name": "state", "datasets": {"real": {"source": "npz", "train": str(tmp_path / "real.npz"),
                                                    "val": str(tmp_path / "real.npz")}},
             "models": {"fake": {"source": "samples", "path": str(tmp_path / "fake.npz")}},
             "metrics": {"fid": {"features": {"name": "test_pixels"}}}}
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with FEATURES.scoped({"test_pixels": _Pixels}):
        before, levels = _state(), _loggers()
        run = bench.run_suite(suite, log=log, tracking_uri=uri if log else None,
                              cache_dir=tmp_path / "cache", verbose=False)
        after, after_levels = _state(), _loggers()
    assert run.ok and run.records and np.isfinite(run.records[0].values["fid"].x)
    assert run.uri == (uri if log else "memory")
    assert after["env"] == before["env"]
    assert after["cwd"] == before["cwd"]
    assert after["registries"] == before["registries"]
    assert {n: lvl for n, lvl in after_levels.items() if n in levels} == levels
