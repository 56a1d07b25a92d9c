"""The suite log (bench.record.suite_log): what the runner needs of a store. MLflow and the
in-memory log (bench.record.memory) declare the same interface, a suite run into memory
resumes, leases and records like one into MLflow, and bench.evaluate's in-memory values,
intervals, flags and records are the ones the MLflow path reads back."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from record_fakes import same_interface

import bench
from bench.core.errors import BenchError
from bench.record.lease import LeaseStore
from bench.record.memory import MemoryLog
from bench.record.suite_log import MlflowSuiteLog, SuiteLog
from bench.record.writer import RecordStore

pytestmark = pytest.mark.usefixtures("pixels")  # tests/conftest.py


def _digits(n: int, offset: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[offset:offset + n] * 255 / 16).round().astype(np.uint8)


def test_both_logs_declare_the_suite_log_interface():
    assert same_interface(MemoryLog, SuiteLog) == []
    assert same_interface(MlflowSuiteLog, SuiteLog) == []
    assert same_interface(MemoryLog, RecordStore) == [] and same_interface(MemoryLog, LeaseStore) == []
    log = MemoryLog()
    assert isinstance(log, SuiteLog) and isinstance(log, RecordStore)
    assert log.record_store() is log and log.artifact_client() is None


def _suite(tmp_path, metrics=("fid",)):
    from bench.config.suite import suite_from_dict

    np.savez(tmp_path / "real.npz", images=_digits(200, 0))
    np.savez(tmp_path / "fake.npz", images=_digits(120, 200))
    return suite_from_dict({
        "name": "memory", "datasets": {"real": {"source": "npz", "train": str(tmp_path / "real.npz"),
                                                "val": str(tmp_path / "real.npz")}},
        "models": {"fake": {"source": "samples", "path": str(tmp_path / "fake.npz")}},
        "metrics": {m: {"features": {"name": "test_pixels"}} for m in metrics}})


def test_a_suite_run_into_memory_resumes_and_holds_the_lease(tmp_path):
    from bench.record.cell_record import LeaseStamp
    from bench.run.runner import run_suite

    suite = _suite(tmp_path)
    log = MemoryLog()
    first = run_suite(suite, progress=False, cache_dir=str(tmp_path / "c"), log=log, boards=False)
    assert first.ok and [o.status for o in first.outcomes] == ["finished"]
    assert first.tracking_uri == "memory" and first.leaderboard == ""  # boards=False: none
    assert first.local is not None and not first.local.grids  # no artifacts kept: no sample grid
    parent = log.runs[first.parent_run_id]
    assert parent.status == "FINISHED" and '"status": "finished"' in parent.texts["cells.json"]
    [rec] = log.records([first.outcomes[0].run_id])
    assert rec.values["fid"] == first.outcomes[0].values["fid"] and rec.parent == first.parent_run_id

    again = run_suite(suite, progress=False, cache_dir=str(tmp_path / "c"), log=log)
    assert [o.status for o in again.outcomes] == ["cached"]  # resumed from the finished run
    assert "fid" in again.leaderboard  # asked for: the markdown board (no HTML: no artifacts)
    assert "leaderboard.html" not in log.runs[again.parent_run_id].texts

    # a live runner's suite run refuses a second runner
    live = log.open_suite("other", {"bench.kind": "suite", "bench.suite": "memory"}, {})
    log.set_tags(live, LeaseStamp(__import__("time").time(), "pid 1 on elsewhere", 1, "elsewhere").to_tags())
    with pytest.raises(BenchError, match="being run by pid 1 on elsewhere"):
        run_suite(suite, progress=False, cache_dir=str(tmp_path / "c"), log=log)


def test_an_executor_of_other_processes_is_refused_for_a_memory_log(tmp_path):
    from bench.executors import EXECUTORS
    from bench.run.runner import run_suite

    pool = EXECUTORS.get("local")(EXECUTORS.get("local").Options(workers=2))
    with pytest.raises(BenchError, match="cannot write to an in-memory log"):
        run_suite(_suite(tmp_path), progress=False, log=MemoryLog(), executor=pool)


def test_evaluate_in_memory_equals_the_mlflow_path(tmp_path, tracking_uri):
    real, fake = _digits(400, 0), _digits(240, 400)
    args = (real, fake, ["fid", "kid"], "test_pixels")
    mem = bench.evaluate(*args, cache_dir=tmp_path / "c", progress=False)
    logged = bench.evaluate(*args, cache_dir=tmp_path / "c", progress=False, log=True,
                            tracking_uri=tracking_uri)
    assert mem.tracking_uri is None and logged.tracking_uri == tracking_uri
    assert list(mem) == list(logged) and len(mem) >= 3
    for name in mem:  # value, interval and declaration, exactly
        assert mem[name] == logged[name], name
    assert mem.flags == logged.flags and mem.targets == logged.targets
    skip = {"run_id", "start_time", "parent", "tags"}  # where and when, not what
    by_metric = {r.metric: r for r in logged.records}
    for r in mem.records:
        other = by_metric[r.metric]
        for f in dataclasses.fields(r):
            if f.name not in skip:
                assert getattr(r, f.name) == getattr(other, f.name), (r.metric, f.name)
        # what this process computed or found in the cache differs between two calls
        where = {"threads", "samples", "fake_features", "real_features"}
        assert {k: v for k, v in r.tags.items() if k not in where} == \
            {k: v for k, v in other.tags.items() if k not in where}


def test_evaluate_problems_are_typed_and_told_in_the_callers_words(tmp_path):
    from bench.config.suite import SuiteError, suite_from_dict

    bad = {"name": "s", "datasets": {"real": {"source": "npz", "train": str(tmp_path / "x.npz")}},
           "models": {"fake": {"source": "samples", "path": str(tmp_path / "y.npz")}},
           "metrics": {"fid": {"nonsense": 1}}}
    with pytest.raises(SuiteError) as e:
        suite_from_dict(bad, check_resources=False)
    paths = [p.path for p in e.value.problems]
    assert ("metrics", "fid", "nonsense") in paths
    assert all(p.line is None for p in e.value.problems)  # a dict has no lines
    assert "<suite dict>: metrics.fid.nonsense: unknown option 'nonsense'" in str(e.value)
    with pytest.raises(BenchError) as e2:
        bench.evaluate(_digits(50, 0), _digits(50, 50), {"fid": {"nonsense": 1}}, "test_pixels")
    assert str(e2.value).startswith("metric 'fid': unknown option 'nonsense'")
