"""A board reads the suite's RUNNING suite runs (the lease's stamps) straight from a SQL store
(bench.record.sql.SuiteRunsView): the same runs, start times and stamps as MLflow's search
(Tracker.running_suite_runs), and the same live runner."""

import os
import time

import pytest

from bench.record.cell_record import TAG, LeaseStamp
from bench.record.lease import live_suite_run
from bench.record.sql import SqlReader, SuiteRunsView, Unsupported
from bench.record.tracking import Tracker
from bench.workflows.leaderboard import in_progress


def _suite_run(tracker: Tracker, suite: str, stamp: LeaseStamp | None, status: str = "RUNNING") -> str:
    rid = tracker.create_parent(f"{suite} run", {f"{TAG}kind": "suite", f"{TAG}suite": suite})
    if stamp is not None:
        tracker.set_tags(rid, stamp.to_tags())
    if status != "RUNNING":
        tracker.end(rid, status)
    return rid


def _ours(runs):
    return [(rid, {k: v for k, v in tags.items() if k.startswith(TAG)}, start) for rid, tags, start in runs]


def test_sql_reads_the_running_suite_runs_mlflow_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp")
    here = os.uname().nodename
    _suite_run(tracker, "s", None)  # never stamped: its start time stands for the heartbeat
    time.sleep(0.01)  # the newest RUNNING suite run is read first
    live = _suite_run(tracker, "s", LeaseStamp(time.time(), f"pid {os.getpid()} on {here}", os.getpid(), here))
    _suite_run(tracker, "s", LeaseStamp(time.time()), status="FINISHED")  # not RUNNING
    _suite_run(tracker, "other", LeaseStamp(time.time()))  # another suite
    other = Tracker(tracker.uri, "exp2")  # the same suite in another experiment
    _suite_run(other, "s", LeaseStamp(time.time()))
    view = SuiteRunsView(tracker.sql, tracker.experiment_id)
    sql_runs = view.running_suite_runs("s")
    assert len(sql_runs) == 2 and live in {r[0] for r in sql_runs}
    assert sql_runs == _ours(tracker.running_suite_runs("s"))
    assert view.running_suite_runs("none") == []
    found = live_suite_run(view, "s", stale_after=60)
    assert found is not None and found[0] == live and found == live_suite_run(tracker, "s", stale_after=60)
    text = in_progress(tracker, "s")
    assert text is not None and text.startswith(f"suite run {live} is in progress (pid {os.getpid()}")
    assert "is in progress (last heartbeat" in (in_progress(tracker, "other") or "")  # nobody named
    assert in_progress(tracker, "none") is None


def test_an_unreadable_store_falls_back(tmp_path):
    class Fallback:
        def running_suite_runs(self, suite):
            return [("r1", {f"{TAG}heartbeat": "1.0"}, 5)]

    reader = SqlReader(f"sqlite:///{tmp_path / 'no-such.db'}")  # reading never makes a file
    view = SuiteRunsView(reader, "0", fallback=Fallback())
    assert view.running_suite_runs("s") == [("r1", {f"{TAG}heartbeat": "1.0"}, 5)]
    with pytest.raises(Unsupported):
        SuiteRunsView(reader, "0").running_suite_runs("s")
    assert not (tmp_path / "no-such.db").exists()
