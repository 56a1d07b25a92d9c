"""Faults on the record path (issue 20, item 4) and the record store's declared interfaces.

- An artifact root that cannot be written is found before any work: `bench run` exits 2 with
  one line naming the folder, and leaves no RUNNING suite run (nor a new experiment whose
  artifact root would be fixed to that folder). A real read-only folder where chmod stops
  writes; as root (chmod does not stop root) the fault is injected where the check writes.
- A full disk is reported as a full disk (path and free space): the cell ends FAILED with that
  reason, the finished cells stay, and nothing says "tracking store unreachable". Injected at
  the writer's MLflow client (no test can fill a real disk cheaply).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bench.cli import main

SUITE = """\
name: faults
seed: 0
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
  noisy: {source: reference, kind: noise, sigma: 0.5}
metrics:
  test_constant: {}
"""


def _runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


# ---------------------------------------------------------------- the interfaces tests fake
def test_fakes_implement_the_declared_interfaces():
    from record_fakes import MemoryLeases, MemoryRecords, same_interface

    from bench.record.lease import LeaseStore
    from bench.record.writer import RecordStore

    assert same_interface(MemoryRecords, RecordStore) == []
    assert same_interface(MemoryLeases, LeaseStore) == []
    assert isinstance(MemoryRecords(), RecordStore)


def test_lease_refuses_a_live_runner_and_takes_over_a_dead_one():
    import time

    from record_fakes import MemoryLeases

    from bench.core.errors import BenchError
    from bench.record.cell_record import LeaseStamp
    from bench.record.lease import Lease

    store = MemoryLeases()
    store.runs["live"] = ("s", "RUNNING", LeaseStamp(time.time(), "pid 1 on elsewhere").to_tags(), 0)
    with pytest.raises(BenchError, match="being run by pid 1 on elsewhere"):
        Lease(store, "s", stale_after=60).take_over()
    store.runs["live"][2].update(LeaseStamp(time.time() - 600, "pid 1 on elsewhere").to_tags())
    assert Lease(store, "s", stale_after=60).take_over() == 1
    assert store.runs["live"][1] == "KILLED" and "killed?" in store.runs["live"][2]["bench.error"]


def test_settings_read_at_use_time_and_name_a_bad_variable(monkeypatch):
    from bench.core.errors import BenchError
    from bench.core.settings import settings

    monkeypatch.setenv("BENCH_STALE_S", "5")
    assert settings().stale_s == 5.0
    monkeypatch.setenv("BENCH_STALE_S", "soon")
    with pytest.raises(BenchError, match="BENCH_STALE_S='soon'"):
        settings()
    monkeypatch.setenv("BENCH_PERSIST_SAMPLES", "off")
    monkeypatch.delenv("BENCH_STALE_S")
    assert settings().persist_samples is False


# ---------------------------------------------------------------- an artifact root that cannot be written
def _read_only(folder: Path, monkeypatch) -> None:
    """Make `folder` refuse writes: chmod, or (as root, whom chmod does not stop) refuse at
    the probe write that the check makes, as a read-only filesystem would."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):
        if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    real_mkdir = Path.mkdir

    def mkdir(self, *a, **k):
        if not self.exists() and self.resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)


def test_unwritable_artifact_root_is_refused_before_any_run(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store}/mlflow.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    ro = tmp_path / "readonly"
    ro.mkdir()
    _read_only(ro, monkeypatch)
    monkeypatch.chdir(ro)
    try:
        code = main(["run", str(suite), "--tracking-uri", uri, "--no-progress"])
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(ro / "mlruns") in err and "--artifact-root" in err
    assert _runs(uri) == []  # no suite run, RUNNING or other
    # nor an experiment whose artifact root is fixed to the read-only folder: from a writable
    # folder (or with --artifact-root) the same suite runs
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(suite), "--tracking-uri", uri, "--no-progress",
                 "--artifact-root", str(tmp_path / "artifacts")]) == 0
    assert any((tmp_path / "artifacts").iterdir())


def test_existing_experiment_with_an_unwritable_root_is_refused(tmp_path, monkeypatch, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    root = tmp_path / "art"
    MlflowClient(tracking_uri=uri).create_experiment("faults", artifact_location=root.as_uri())
    root.mkdir()
    _read_only(root, monkeypatch)
    capsys.readouterr()  # what creating the store printed (MLflow's own INFO lines) is not bench's
    try:
        code = main(["run", str(suite), "--tracking-uri", uri, "--no-progress"])
    finally:
        root.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(root) in err
    assert _runs(uri) == []


# ---------------------------------------------------------------- a full disk
@pytest.mark.parametrize("fault", ["enospc", "sqlite"])
def test_full_disk_fails_the_cell_as_a_full_disk(tmp_path, monkeypatch, capsys, fault):
    from mlflow.exceptions import MlflowException

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    calls = {"n": 0}
    log_artifacts, log_batch = MlflowClient.log_artifacts, MlflowClient.log_batch

    def full() -> Exception:
        if fault == "enospc":
            return OSError(errno.ENOSPC, "No space left on device")
        return MlflowException("(sqlite3.OperationalError) database or disk is full")

    def failing_artifacts(self, run_id, local_dir, artifact_path=None):
        calls["n"] += 1
        if calls["n"] >= 2:  # the first cell's artifacts are written; then the disk is full
            raise full()
        return log_artifacts(self, run_id, local_dir, artifact_path)

    def failing_metrics(self, run_id, metrics=(), params=(), tags=(), **k):
        if metrics and calls["n"] >= 1 and fault == "sqlite":
            raise full()
        return log_batch(self, run_id, metrics=metrics, params=params, tags=tags, **k)

    monkeypatch.setattr(MlflowClient, "log_artifacts", failing_artifacts)
    monkeypatch.setattr(MlflowClient, "log_batch", failing_metrics)
    code = main(["run", str(suite), "--tracking-uri", uri, "--no-progress"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1
    assert "unreachable" not in text and "Traceback" not in text
    assert "disk full: " in text and " free" in text
    cells = {r.data.tags["bench.model"]: r for r in _runs(uri) if r.data.tags.get("bench.kind") == "cell"}
    assert cells["real"].info.status == "FINISHED"  # the finished cell stays
    assert cells["noisy"].info.status == "FAILED"
    assert cells["noisy"].data.tags["bench.error"].startswith("disk full: ")
    assert not [r for r in _runs(uri) if r.info.status == "RUNNING"]
