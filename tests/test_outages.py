"""Store outages and faults (issue 29, item 5): said once each way, retried whatever the
store, and no computed cell lost; one line for each fault a user must fix.

An outage is played on an injected clock (bench.record.outage.Outage's `clock` and `sleep`):
the store's raw MlflowClient refuses every call while the virtual clock is inside the outage,
so a five-minute outage takes no five minutes.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from bench.cli import main
from bench.core.errors import BenchError
from bench.record import outage as outage_mod
from bench.record.outage import Outage, StoreUnreachable, transient

SUITE = """\
name: outage
seed: 0
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
  noisy: {source: reference, kind: noise, sigma: 0.5}
  noisier: {source: reference, kind: noise, sigma: 0.8}
  blurry: {source: reference, kind: noise, sigma: 0.3}
metrics:
  test_constant: {}
"""
# what each store says while it is down
PG_DOWN = ('(psycopg2.OperationalError) connection to server at "db" (10.0.0.5), port 5432 '
           'failed: Connection refused')
HTTP_DOWN = ("API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/log-batch failed with "
             "exception HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded "
             "with url: /api/2.0/mlflow/runs/log-batch (Caused by NewConnectionError('Failed to "
             "establish a new connection: [Errno 111] Connection refused'))")
CLIENT_CALLS = ("create_run", "log_batch", "log_inputs", "set_terminated", "log_artifacts",
                "log_text", "search_runs", "get_run", "get_experiment", "get_experiment_by_name",
                "create_experiment", "download_artifacts", "list_artifacts", "log_image")


class Clock:
    """Virtual seconds: `sleep` moves them on at once."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s
        self.slept += s


# ---------------------------------------------------------------- the retry loop itself
def test_an_outage_is_said_once_each_way_and_waited_out_on_the_injected_clock():
    clock, said = Clock(), []
    o = Outage("sqlite:///x.db", patience=600, clock=clock, sleep=clock.sleep, say=said.append)
    back_at = clock.t + 300  # a five-minute outage

    def call():
        if clock.t < back_at:
            raise MlflowException(PG_DOWN, error_code="TEMPORARILY_UNAVAILABLE")
        return "ok"

    assert o.call(call) == "ok"
    assert len(said) == 2 and "unreachable" in said[0] and "Connection refused" in said[0]
    assert "reachable again (unreachable for 5 min" in said[1]
    assert 300 <= clock.slept <= 330  # backoff 1, 2, 4, 8, 15, then every 30 s
    assert o.call(call) == "ok" and len(said) == 2  # nothing more while it stays up

    # patience shorter than the outage: the call gives up, said once, no real time spent
    clock2, said2 = Clock(), []
    o2 = Outage("sqlite:///x.db", patience=60, clock=clock2, sleep=clock2.sleep, say=said2.append)
    with pytest.raises(StoreUnreachable, match="Connection refused"):
        o2.call(lambda: (_ for _ in ()).throw(ConnectionRefusedError("Connection refused")))
    assert clock2.slept == pytest.approx(60) and len(said2) == 1
    # a fault waiting does not cure is raised at once, without a word
    with pytest.raises(MlflowException, match="readonly"):
        o2.call(lambda: (_ for _ in ()).throw(MlflowException(
            "(sqlite3.OperationalError) attempt to write a readonly database",
            error_code="TEMPORARILY_UNAVAILABLE")))
    assert len(said2) == 1 and clock2.slept == pytest.approx(60)


@pytest.mark.parametrize("fault, waits", [
    (MlflowException(PG_DOWN, error_code="TEMPORARILY_UNAVAILABLE"), True),  # PostgreSQL away
    (MlflowException(HTTP_DOWN), True),  # a tracking server away
    (MlflowException("(sqlite3.OperationalError) database is locked",
                     error_code="TEMPORARILY_UNAVAILABLE"), True),  # SQLite busy
    (MlflowException("API request to endpoint /api/2.0/mlflow/runs/create failed with error "
                     "code 503 != 200. Response body: 'Service Unavailable'"), True),
    (ConnectionResetError("Connection reset by peer"), True),
    (MlflowException("(sqlite3.OperationalError) attempt to write a readonly database",
                     error_code="TEMPORARILY_UNAVAILABLE"), False),
    (MlflowException("(sqlite3.OperationalError) database or disk is full"), False),
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (PermissionError(errno.EACCES, "Permission denied", "/art/1/x/artifacts/a.png"), False),
    (MlflowException("Online migration expected to match one row when migrating from x"), False),
    (MlflowException("Run 'abc' not found", error_code="RESOURCE_DOES_NOT_EXIST"), False),
])
def test_which_faults_are_waited_for(fault, waits):
    assert transient(fault) is waits


# ---------------------------------------------------------------- a suite through an outage
def _play_outage(monkeypatch, uri: str, clock: Clock, length: float, fault: str) -> dict:
    """The store refuses every raw client call for `length` virtual seconds from the second
    cell's first write of its results (a cell in flight meets it)."""
    state = {"inputs": 0, "until": None}

    def wrap(name, orig):
        def call(self, *a, **k):
            if name == "log_inputs":
                state["inputs"] += 1
                if state["inputs"] == 2 and state["until"] is None:
                    state["until"] = clock.t + length
            if state["until"] is not None and clock.t < state["until"]:
                if fault == "http":
                    raise MlflowException(HTTP_DOWN)
                raise MlflowException(PG_DOWN, error_code="TEMPORARILY_UNAVAILABLE")
            return orig(self, *a, **k)
        return call

    for name in CLIENT_CALLS:
        monkeypatch.setattr(MlflowClient, name, wrap(name, getattr(MlflowClient, name)))
    return state


def _cell_runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    return [r for r in client.search_runs(exps) if r.data.tags.get("bench.kind") == "cell"]


@pytest.mark.parametrize("fault", ["postgresql", "http"])
def test_a_five_minute_outage_loses_no_computed_cell(tmp_path, monkeypatch, capsys, fault):
    from conftest import _Constant

    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    monkeypatch.setenv("BENCH_STORE_PATIENCE_S", "60")
    monkeypatch.setenv("BENCH_HEARTBEAT_S", "1000")  # the heartbeat thread stays out of the clock
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "s.yaml").write_text(SUITE)
    clock, said = Clock(), []
    monkeypatch.setitem(outage_mod._OUTAGES, uri, Outage(uri, clock=clock, sleep=clock.sleep,
                                                         say=said.append))
    computed = []
    compute = _Constant.compute

    def counted(self, generator, dataset, ctx):
        out = compute(self, generator, dataset, ctx)
        computed.append(out["mean_pixel"])
        return out

    monkeypatch.setattr(_Constant, "compute", counted)
    state = _play_outage(monkeypatch, uri, clock, 300, fault)

    first = run_suite(load_suite(tmp_path / "s.yaml"), tracking_uri=uri, progress=False,
                      cache_dir=str(tmp_path / "cache"))
    out = capsys.readouterr().out
    assert state["until"] is not None and clock.t < state["until"]  # the store is still down
    # the cell in flight and the two after it were computed during the outage, and kept
    assert [o.status for o in first.outcomes] == ["finished", "kept", "kept", "kept"]
    assert not first.ok and len(computed) == 4
    assert len(said) == 1 and "unreachable" in said[0]  # said once, not once per retry
    assert out.count("still unreachable") == 1 and "Traceback" not in out
    assert "after retries" not in out and "could not be logged" not in out
    spool = tmp_path / "cache" / "spool"
    assert len([d for d in spool.rglob("record.json")]) == 3

    clock.t = state["until"] + 1  # the store is back
    monkeypatch.setenv("BENCH_STALE_S", "0.001")  # the first runner is gone (same test process)
    second = run_suite(load_suite(tmp_path / "s.yaml"), tracking_uri=uri, progress=False,
                       cache_dir=str(tmp_path / "cache"))
    out = capsys.readouterr().out
    assert len(said) == 2 and "reachable again" in said[1]
    assert "3 finished cell(s) kept through a store outage written" in out
    assert [o.status for o in second.outcomes] == ["cached"] * 4 and second.ok
    assert len(computed) == 4  # written, not computed again
    runs = _cell_runs(uri)
    finished = {r.data.tags["bench.model"]: r for r in runs if r.info.status == "FINISHED"}
    assert len(finished) == 4 and len([r for r in runs if r.info.status == "FINISHED"]) == 4
    by_model = {o.cell.model.key: o.values["mean_pixel"].x for o in first.outcomes}
    assert {m: r.data.metrics["mean_pixel"] for m, r in finished.items()} == by_model
    assert all(r.data.tags.get("bench.values") for r in finished.values())
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert not list(spool.rglob("record.json"))


def test_a_short_outage_is_waited_out_by_the_cell_in_flight(tmp_path, monkeypatch, capsys):
    """Shorter than the patience (a 50 s server restart): nothing kept, every cell written
    once, one line when it went and one when it came back."""
    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    monkeypatch.setenv("BENCH_STORE_PATIENCE_S", "120")
    monkeypatch.setenv("BENCH_HEARTBEAT_S", "1000")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "s.yaml").write_text(SUITE)
    clock, said = Clock(), []
    monkeypatch.setitem(outage_mod._OUTAGES, uri, Outage(uri, clock=clock, sleep=clock.sleep,
                                                         say=said.append))
    _play_outage(monkeypatch, uri, clock, 50, "http")
    report = run_suite(load_suite(tmp_path / "s.yaml"), tracking_uri=uri, progress=False,
                       cache_dir=str(tmp_path / "cache"))
    assert report.ok and [o.status for o in report.outcomes] == ["finished"] * 4
    assert len(said) == 2 and "unreachable" in said[0] and "reachable again (unreachable for 1 min 0 s)" in said[1]
    runs = _cell_runs(uri)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert "Traceback" not in capsys.readouterr().out


# ---------------------------------------------------------------- one line per fault
@pytest.mark.parametrize("uri, package", [
    ("postgresql+psycopg://bench@db.example/mlflow", 'pip install "psycopg[binary]"'),
    ("mysql://bench:secret@db.example/mlflow", 'pip install "mysqlclient"'),
])
def test_a_missing_database_driver_is_one_line_naming_the_package(tmp_path, capsys, uri, package):
    (tmp_path / "s.yaml").write_text(SUITE)
    assert main(["run", str(tmp_path / "s.yaml"), "--tracking-uri", uri, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and package in err and "Traceback" not in err
    assert "secret" not in err  # the password is not printed


def test_a_read_only_sqlite_file_with_a_new_experiment_is_one_line(tmp_path, capsys):
    db = tmp_path / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").create_experiment("other")  # the store exists
    (tmp_path / "s.yaml").write_text(SUITE)
    ro = f"sqlite:///file:{db}?mode=ro&uri=true"  # read-only as SQLite sees it (root ignores chmod)
    assert main(["run", str(tmp_path / "s.yaml"), "--tracking-uri", ro, "--no-progress"]) == 2
    out = capsys.readouterr()
    err = out.err.strip()
    assert len(err.splitlines()) == 1 and "read-only" in err and "fix its permissions" in err
    assert "Traceback" not in out.out + out.err and "INSERT INTO" not in out.out + out.err


def test_a_migration_race_is_tried_again_then_said_in_one_line(tmp_path, monkeypatch):
    from bench.record.tracking import Tracker

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    calls = {"n": 0}
    real = MlflowClient.get_experiment_by_name

    def loser(self, name, times):
        calls["n"] += 1
        if calls["n"] <= times:  # what the loser of two runners on a fresh file meets
            raise MlflowException("Online migration expected to match one row when migrating "
                                  "from version x to y")
        return real(self, name)

    monkeypatch.setattr("bench.record.tracking.time.sleep", lambda s: None)
    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", lambda self, n: loser(self, n, 2))
    assert Tracker(uri, "raced").experiment_id  # the winner has made the tables: opened
    calls["n"] = 0
    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", lambda self, n: loser(self, n, 99))
    with pytest.raises(BenchError, match="another process is creating the tracking store") as e:
        Tracker(uri, "raced again")
    assert "\n" not in str(e.value)


def _stop_suite(tmp_path, monkeypatch, capsys, fault) -> tuple[int, str]:
    (tmp_path / "s.yaml").write_text(SUITE)
    monkeypatch.setenv("BENCH_HEARTBEAT_S", "1000")
    fault(monkeypatch)
    code = main(["run", str(tmp_path / "s.yaml"), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                 "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_full_cache_disk_is_said_once_and_stops_the_suite(tmp_path, monkeypatch, capsys):
    import torch
    from conftest import _Constant

    def fill(monkeypatch):
        def writes_cache(self, generator, dataset, ctx):
            ctx.cache.save_torch(ctx.cache.path("test_entry", ctx.seed), torch.zeros(4))
            return {"mean_pixel": 0.5}

        def full(obj, f, *a, **k):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter "
                               "failed writing file data/0: file write failed")

        monkeypatch.setattr(_Constant, "compute", writes_cache)
        monkeypatch.setattr(torch, "save", full)

    code, text = _stop_suite(tmp_path, monkeypatch, capsys, fill)
    assert code == 1
    # said once on the console (the summary's table then lists the one cell that met it)
    assert sum(ln.startswith("disk full: ") for ln in text.splitlines()) == 1, text
    assert "the bench cache" in text and "1 failed" in text
    assert "inline_container" not in text and "Traceback" not in text
    assert "The suite stops here (3 cell(s) not run; finished cells are kept)" in text
    runs = _cell_runs(f"sqlite:///{tmp_path}/mlflow.db")
    assert [r.info.status for r in runs] == ["FAILED"]  # the one that met it; none RUNNING
    assert runs[0].data.tags["bench.error"].startswith("disk full: ")


def test_a_read_only_artifact_folder_is_named_as_such(tmp_path, monkeypatch, capsys):
    def refuse(monkeypatch):
        def denied(self, run_id, local_dir, artifact_path=None):
            raise PermissionError(errno.EACCES, "Permission denied",
                                  str(Path(tmp_path) / "mlruns" / "1" / run_id / "artifacts" / "samples.png"))

        monkeypatch.setattr(MlflowClient, "log_artifacts", denied)

    code, text = _stop_suite(tmp_path, monkeypatch, capsys, refuse)
    assert code == 1
    assert sum(ln.startswith("the artifact folder ") for ln in text.splitlines()) == 1, text
    assert "is read-only" in text
    assert "unreachable" not in text and "Traceback" not in text
    assert "The suite stops here (3 cell(s) not run; finished cells are kept)" in text
    runs = _cell_runs(f"sqlite:///{tmp_path}/mlflow.db")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_mlflow_says_no_view_run_lines_and_the_summary_names_the_ui(tmp_path, monkeypatch, capsys):
    from mlflow.environment_variables import (
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR,
        MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT,
    )

    from bench.cli.console import browse as _browse
    from bench.record.tracking import quiet_store_logs

    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # the user's: kept
    with quiet_store_logs():  # every store call runs in such a block
        assert MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.get() is True  # MLflow's _log_url is silent
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"  # Outage retries, and says so
        assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is True
    # and the caller's environment is as it was after the block (issue 28)
    assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"

    class Report:
        tracking_uri, experiment_id, parent_run_id = "http://127.0.0.1:5000", "3", "abc"

    assert _browse(Report()) == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    Report.tracking_uri = "sqlite:///mlflow.db"
    assert _browse(Report()) == "mlflow ui --backend-store-uri sqlite:///mlflow.db"


def test_a_fresh_sqlite_store_is_opened_by_one_process_at_a_time(tmp_path):
    """Two runners on a fresh SQLite file raced to create MLflow's tables (the loser: "Online
    migration expected to match one row", "duplicate column name", or both broken): opening
    waits on a lock file beside the store while another process holds it."""
    import threading

    from filelock import FileLock

    from bench.record.tracking import Tracker

    db = tmp_path / "mlflow.db"
    other = FileLock(f"{db}.lock")
    other.acquire()  # another runner is creating the tables
    opened: dict[str, str] = {}
    t = threading.Thread(target=lambda: opened.setdefault("id", Tracker(f"sqlite:///{db}", "x").experiment_id))
    t.start()
    t.join(2.0)
    assert t.is_alive() and not db.exists()  # waits, touches nothing
    other.release()
    t.join(120)
    assert opened.get("id") and db.exists()
