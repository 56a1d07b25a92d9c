"""The workflows behind `bench nightly`, `bench compare` and `bench leaderboard`, called from
Python: `import bench` names them (bench.workflows.api), and they return as values what the
command line prints; the lower-level functions of bench.workflows give the same answers."""

import re
import time
from pathlib import Path

import pytest
from tiny_suites import INSTANT

import bench
from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.workflows.compare import compare_runs
from bench.workflows.history import model_history
from bench.workflows.leaderboard import suite_run_page
from bench.workflows.store import open_suite_store


def test_nightly_compare_and_history_from_python(write_suite, tracking_uri, tmp_path, capsys):
    from bench.cli import main
    from bench.record.cell_record import LeaseStamp, SuiteRunRecord
    from bench.record.tracking import Tracker

    path = write_suite(INSTANT)
    said: list[str] = []
    first = bench.nightly(str(path), tracking_uri=tracking_uri, history=0, progress=False,
                          echo=said.append)
    assert first.table is None and first.regressions == 0 and first.ok
    assert first.page is None  # one suite run: no trends, and no page asked for
    assert said[0] == first.report.leaderboard and said[-1].startswith("first run of this suite")

    # a live runner (on another host) holds the suite: the night is skipped, no run is made
    tracker = Tracker(tracking_uri, "tiny")
    busy = tracker.create_parent("tiny now", SuiteRunRecord("tiny").identity_tags())
    tracker.set_tags(busy, LeaseStamp(time.time(), "pid 1 on elsewhere", 1, "elsewhere").to_tags())
    with pytest.raises(bench.SuiteInProgress, match=f"^suite run {busy} is in progress "
                       r"\(pid 1 on elsewhere, last heartbeat \d+ s ago\)$"):
        bench.nightly(str(path), tracking_uri=tracking_uri, history=0, progress=False)
    capsys.readouterr()
    assert main(["nightly", str(path), "--tracking-uri", tracking_uri, "--no-progress"]) == 75
    out = capsys.readouterr()
    assert out.err == "" and re.fullmatch(
        rf"skipped: suite run {busy} is in progress \(pid 1 on elsewhere, last heartbeat \d+ s "
        r"ago\); this night's run did not start \(exit 75\)\n", out.out), out.out
    assert tracker.suite_runs("tiny") == [first.report.parent_run_id]  # nothing ran
    tracker.end(busy, "KILLED")  # the runner stopped: the next night runs

    second = bench.nightly(load_suite(path), tracking_uri=tracking_uri, history=0, trends=2,
                           progress=False)
    old, new = first.report.parent_run_id, second.report.parent_run_id
    assert second.base_id == old and second.regressions == 0 and second.ok
    assert second.text is not None and second.text.startswith(f"base {old} -> new {new}\n\n")
    assert second.page is not None and "Leaderboard: tiny" in second.page

    # bench.compare: the same window, from the suite file as `bench compare` opens it
    result = bench.compare(str(path), tracking_uri=tracking_uri, history=0)
    assert (result.suite, result.base_id, result.new_id) == ("tiny", old, new) and result.ok
    assert second.table is not None
    assert result.table[["model", "value", "status"]].equals(second.table[["model", "value", "status"]])
    assert result.render().startswith(f"base {old} -> new {new}\n\n")
    assert '"regressions": 0' in result.render("json")
    with pytest.raises(BenchError, match="base and new are both 'latest'"):
        bench.compare("tiny", "latest", "latest", tracking_uri=tracking_uri)
    # and through the lower-level workflow, on the store opened from the suite file
    tracker, name = open_suite_store(str(path), tracking_uri)
    assert name == "tiny"
    base_id, new_id, table = compare_runs(tracker, name, "previous", "latest", history=0)
    assert (base_id, new_id) == (old, new) and table.equals(result.table)

    # one model over both suite runs, oldest first (by suite name as well as by file)
    assert len(bench.history("tiny", "real", tracking_uri=tracking_uri)) == 2
    assert bench.history(str(path), "real", tracking_uri=tracking_uri).equals(
        model_history(tracker, name, "real"))
    # ... and as `bench leaderboard --model real --history` prints it
    from bench.report.leaderboard import render_history

    capsys.readouterr()
    assert main(["leaderboard", str(path), "--tracking-uri", tracking_uri, "--model", "real",
                 "--history"]) == 0
    assert capsys.readouterr().out == render_history(bench.history("tiny", "real",
                                                                   tracking_uri=tracking_uri),
                                                     "real") + "\n"
    # the HTML board's trends over both runs, and the board itself
    # (no row here: the one model is the real reference, which is not ranked)
    trend = bench.trends(str(path), last=2, tracking_uri=tracking_uri, history=0)
    assert trend is not None and {"run_id", "band_lo", "band_hi", "status"} <= set(trend.columns)
    assert bench.trends("tiny", last=1, tracking_uri=tracking_uri) is None  # no trend of one run
    board = bench.leaderboard(str(path), tracking_uri=tracking_uri)
    assert "real" in board and board == bench.leaderboard("tiny", tracking_uri=tracking_uri)
    # the page of one suite run without trends: the one builder the runner also logs with
    page = suite_run_page(tracker, load_suite(path), new, None)
    assert page is not None and "Leaderboard: tiny" in page and '<section id="trends">' not in page
    # two suite runs make a trend: the page with it replaces the runner's on the suite run
    (tmp_path / "dl").mkdir()
    logged = tracker.client.download_artifacts(new, "leaderboard.html", str(tmp_path / "dl"))
    assert Path(logged).read_text() == second.page
    assert bench.accept(str(path), tracking_uri=tracking_uri) == ("tiny", new)
    assert tracker.client.get_run(new).data.tags["bench.baseline"] == "accepted"


def test_import_bench_names_the_workflows_without_importing_them():
    """`import bench` stays light: the workflows (and MLflow, pandas) load on first use."""
    import subprocess
    import sys

    code = ("import sys, bench; before = set(sys.modules); f = bench.compare; "
            "print(sorted(m for m in ('bench.workflows.api', 'pandas', 'mlflow', 'torch') "
            "if m in before), f.__module__, callable(bench.nightly))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "bench.workflows.api", "True"]
    for name in ("leaderboard", "compare", "accept", "nightly", "history", "trends"):
        assert getattr(bench, name).__doc__, name
