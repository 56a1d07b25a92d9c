"""Honest states on the board (issue 29): a declared model without a recorded run is
"pending" while a suite run is in progress and "not run" after one ended or was interrupted,
never "failed" and never ranked; the board says when a suite run is in progress; names with
control characters are shown as escapes in every format and on the console."""

import json
import re
import time

import pandas as pd
import pytest

from bench.record.values import Measured, score
from bench.report.html import render_html
from bench.report.leaderboard import NOT_RUN, PENDING, build_leaderboard, render, summarize

TRAIN = {"gan_train_acc": score("higher", "utility")}
FID = {"fid": score("lower", "quality")}
RUNNING = "suite run abc is in progress (pid 7 on host, last heartbeat 3 s ago)"
ESC = "\x1b[31mred\x1b[0m"


def runs(rows):
    base = {"suite": "s", "cell_key": "k", "primary": "", "reference": False, "held_out": False,
            "dataset": "d", "repeat": 0}
    return pd.DataFrame([{**base, "start_time": i, **r} for i, r in enumerate(rows)])


def finished(model, acc, fid, **kw):
    return [{"model": model, "metric": "gan_train", "values": TRAIN, "primary": "gan_train_acc",
             "m:gan_train_acc": acc, "m:gan_train_acc.lo": acc - 0.02,
             "m:gan_train_acc.hi": acc + 0.02, **kw},
            {"model": model, "metric": "fid", "values": FID, "primary": "fid", "m:fid": fid, **kw}]


def board(in_progress=None, extra=()):
    """Two models finished, one failed, two declared without any run."""
    df = runs([*finished("a", 0.9, 5.0), *finished("b", 0.7, 9.0),
               {"model": "broken", "metric": "gan_train", "values": TRAIN,
                "primary": "gan_train_acc", "status": "FAILED", "error": "boom: bad output"},
               *extra])
    declared = {("d", m) for m in ("a", "b", "broken", "later", "later2")}
    return build_leaderboard(df, declared=declared, in_progress=in_progress)


def test_during_a_run_models_without_a_run_are_pending_not_failed_nor_ranked():
    (t,) = board(RUNNING)
    assert t.state("later") == PENDING and t.state("later2") == PENDING and t.state("a") is None
    assert not t.failed("later") and t.failed("broken")
    s = summarize([t])
    assert list(s.index) == ["a", "b", "broken", "later", "later2"]  # pending after failed
    assert s.at["later", "verdict"] == PENDING and s.at["broken", "verdict"].startswith("failed")
    assert pd.isna(s.at["later", "place"]) and s.at["a", "place"] == 1.0
    assert s.at["later", "ranked"] == 0 and s.at["later", "wins"] == 0

    md = render([t])
    assert md.startswith("**In progress.** " + RUNNING)
    assert "2 model(s) without a run yet are pending" in md
    assert "no run recorded for this model" not in md and "✗ pending" not in md
    assert "| later " in md and "| pending " in md  # its row says pending in every column
    assert "`later`, `later2`" in md.split("**Flags and failures**")[1]
    assert "✗ `later`" not in md and "later ✗" not in md  # not failed, not flagged

    j = json.loads(render([t], "json"))
    assert j["in_progress"].startswith(RUNNING)
    rows = {r["model"]: r for r in j["tables"][0]["rows"]}
    assert rows["later"]["state"] == PENDING and rows["later"]["tier"] == 3
    assert rows["a"]["state"] is None
    assert {f["model"] for f in j["tables"][0]["failures"]} == {"broken"}
    assert {r["model"]: r["verdict"] for r in j["summary"]}["later"] == PENDING

    csv = pd.read_csv(__import__("io").StringIO(render([t], "csv")), keep_default_na=False)
    assert set(csv.loc[csv["model"] == "later", "state"]) == {PENDING}
    assert set(csv.loc[csv["model"] == "a", "state"]) == {""}
    assert csv.loc[csv["model"] == "later", "rank"].eq("").all()  # never ranked

    assert r"later2 (pending)" in render([t], "latex")
    page = render_html([t])
    assert "<strong>In progress.</strong>" in page and 'class="state">pending</td>' in page
    assert "✗ pending" not in page
    # the page's flag lines name models plainly: markdown's backticks belong to markdown
    items = page.split("<h3>Flags and failures</h3>")[1].split("</ul>")[0]
    assert "✗ broken failed (gan_train): boom: bad output" in items and "`" not in items


def test_after_an_interrupted_run_models_never_started_are_not_run():
    (t,) = board(None)
    assert t.state("later") == NOT_RUN and not t.failed("later") and t.in_progress is None
    s = summarize([t])
    assert s.at["later", "verdict"] == NOT_RUN and pd.isna(s.at["later", "place"])
    md = render([t])
    assert "In progress" not in md and "failed: no run" not in md
    assert "not run (no run recorded: the suite run ended or was interrupted" in md
    assert "| later " in md and "| not run " in md and "✗ not run" not in md
    page = render_html([t])
    assert 'class="state">not run</td>' in page and "In progress" not in page


def test_a_pending_model_is_not_a_console_verdict():
    from bench.run.runner import verdict_lines

    lines = verdict_lines(board(None))
    assert lines == ["verdict: broken: failed: boom: bad output"]


def test_a_model_pending_on_one_dataset_is_ordered_by_the_other():
    df = runs([*finished("a", 0.9, 5.0), *finished("b", 0.7, 9.0),
               *[{**r, "dataset": "e"} for r in finished("b", 0.8, 4.0)]])
    declared = {("d", "a"), ("d", "b"), ("e", "a"), ("e", "b")}
    tables = build_leaderboard(df, declared=declared, in_progress=RUNNING)
    e = next(t for t in tables if t.dataset == "e")
    assert e.state("a") == PENDING
    s = summarize(tables)
    assert s.at["a", "verdict"] == "pass" and s.at["a", "place"] == 1.0  # its place on d


def test_everything_pending_at_the_start_of_a_run():
    tables = build_leaderboard(runs([]).reindex(columns=["dataset", "model", "metric", "repeat",
                                                         "reference", "start_time"]),
                               declared={("d", "a"), ("d", "b")}, in_progress=RUNNING)
    (t,) = tables
    assert t.unrun == {"a": PENDING, "b": PENDING}
    md = render(tables)
    assert "**In progress.**" in md and "`a`, `b`" in md and "✗ `" not in md and "| pending " in md


def test_live_suite_run_is_what_a_live_runner_holds():
    from record_fakes import MemoryLeases

    from bench.record.cell_record import LeaseStamp
    from bench.record.lease import live_suite_run

    store = MemoryLeases()
    assert live_suite_run(store, "s", stale_after=60) is None
    store.runs["old"] = ("s", "RUNNING", LeaseStamp(time.time() - 600, "pid 1 on elsewhere").to_tags(), 0)
    assert live_suite_run(store, "s", stale_after=60) is None  # its runner is gone
    store.runs["live"] = ("s", "RUNNING", LeaseStamp(time.time(), "pid 2 on elsewhere").to_tags(), 0)
    store.runs["done"] = ("s", "FINISHED", LeaseStamp(time.time(), "pid 3 on elsewhere").to_tags(), 0)
    run_id, stamp = live_suite_run(store, "s", stale_after=60)
    assert run_id == "live" and stamp.runner == "pid 2 on elsewhere"
    assert live_suite_run(store, "other", stale_after=60) is None


class _Tracker:
    """What `bench leaderboard` reads from a store: cell runs and the suite's RUNNING runs."""

    uri = "memory://"

    def __init__(self, frame, running):
        self.frame, self.running = frame, running

    def cell_runs(self, suite=None, failed=False):
        return self.frame

    def running_suite_runs(self, suite):
        return self.running


SUITE = """\
name: s
datasets:
  d: {source: digits}
models:
  a: {source: reference, kind: real}
  b: {source: reference, kind: noise, sigma: 0.5}
  c: {source: reference, kind: noise, sigma: 0.9}
metrics:
  fid: {}
"""


@pytest.mark.parametrize("live", [True, False])
def test_bench_leaderboard_during_and_after_a_run(live, write_suite, monkeypatch, capsys):
    """`bench leaderboard SUITE` while a live runner holds the suite: the models it has not
    reached yet are pending; with no live runner (interrupted), they are not run."""
    from bench import cli
    from bench.record.cell_record import LeaseStamp
    from bench.workflows import api  # where `bench leaderboard` opens the store

    suite = write_suite(SUITE)
    frame = runs([{"model": "a", "metric": "fid", "values": FID, "primary": "fid", "m:fid": 3.0}])
    running = [("run1", LeaseStamp(time.time(), "pid 9 on elsewhere").to_tags(), 0)] if live else []
    monkeypatch.setattr(api, "open_suite_store", lambda *args, **kw: (_Tracker(frame, running), "s"))
    assert cli.main(["leaderboard", str(suite)]) == 0
    out = capsys.readouterr().out
    state = PENDING if live else NOT_RUN
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ") and "---" not in line}
    for m in ("b", "c"):  # the summary's row and the table's (the last one): the state, no ✗
        assert f"| {state} " in rows[m] and "✗" not in rows[m] and "failed" not in rows[m]
    assert ("**In progress.** suite run run1 is in progress (pid 9 on elsewhere" in out) == live
    assert "no run recorded for this model" not in out


def test_names_with_control_characters_are_escaped_in_every_format():
    df = runs([*finished(ESC, 0.9, 5.0), *finished("b\x07ell", 0.7, 9.0)])
    tables = build_leaderboard(df, declared={("d", ESC), ("d", "b\x07ell"), ("d", "x\x1b]0;t\x07")})
    for fmt in ("markdown", "csv", "latex"):
        out = render(tables, fmt)
        assert "\x1b" not in out and "\x07" not in out, fmt
        shown = re.sub(r"\\(.)", r"\1", out) if fmt == "markdown" else out  # markdown escapes undone
        assert r"\x1b[31mred\x1b[0m" in shown.replace("\\textbackslash{}", "\\"), fmt
    md = re.sub(r"\\(.)", r"\1", render(tables))
    assert r"b\x07ell" in md and r"x\x1b]0;t\x07" in md
    assert r"\textbackslash{}x1b[31mred" in render(tables, "latex")  # a backslash LaTeX prints
    j = render(tables, "json")
    assert "\x1b" not in j and json.loads(j)["tables"][0]["rows"][0]["model"] == ESC  # data kept
    page = render_html(tables)
    assert "\x1b" not in page and "\x07" not in page and r"\x1b[31mred\x1b[0m" in page


def test_console_lines_errors_and_warnings_escape_control_characters(capsys, monkeypatch):
    import warnings

    from bench import cli
    from bench.cli import commands, console
    from bench.core.errors import BenchError
    from bench.run import runner

    runner._log(f"model {ESC}: done")
    assert capsys.readouterr().out.strip() == r"model \x1b[31mred\x1b[0m: done"
    console.say(f"regression: {ESC}\nnext")  # what `bench nightly` echoes
    assert capsys.readouterr().out == "regression: \\x1b[31mred\\x1b[0m\nnext\n"

    def boom(args):
        warnings.warn(f"class folder {ESC} is small", stacklevel=1)
        raise BenchError(f"model '{ESC}' is broken\nsecond line")

    monkeypatch.setitem(commands.COMMANDS, "list", boom)  # main reads it when it runs
    with warnings.catch_warnings(record=True) as shown:  # what would be written to stderr
        warnings.simplefilter("always")
        assert cli.main(["list"]) == 2
    assert [str(w.message) for w in shown] == [r"class folder \x1b[31mred\x1b[0m is small"]
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "error: model '\\x1b[31mred\\x1b[0m' is broken\nsecond line" in err


def test_class_folder_names_are_escaped_in_the_imbalance_warning():
    import numpy as np

    from bench.data._util import imbalance_note

    with pytest.warns(UserWarning) as rec:
        note = imbalance_note("image_folder x", np.array([100, 3]), [ESC, "b"])
    assert "\x1b" not in str(rec[0].message) and "\x1b" not in note
    assert r"\x1b[31mred\x1b[0m: 100" in note


def test_bench_leaderboard_on_a_real_store_during_a_run_then_after_it_was_killed(write_suite, tmp_path,
                                                                                capsys):
    """The finding itself, on an MLflow store: a RUNNING suite run with a fresh heartbeat and
    one finished cell; `bench leaderboard` shows the other models pending, and once the suite
    run is closed KILLED (interrupted), not run. No model reads failed."""
    from bench.cli import main
    from bench.config.suite import load_suite
    from bench.record.cell_record import CellRecord, LeaseStamp, SuiteRunRecord
    from bench.record.tracking import Tracker
    from bench.record.writer import RecordWriter

    path = write_suite(SUITE)
    suite = load_suite(path, check_resources=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, suite.experiment)
    parent = tracker.create_parent("s now", SuiteRunRecord("s").identity_tags())
    tracker.set_tags(parent, LeaseStamp(time.time(), "pid 1 on elsewhere", 1, "elsewhere").to_tags())
    writer = RecordWriter(tracker)
    record = CellRecord(suite="s", model="a", dataset="d", metric="fid", cell_key="a-d-fid",
                        primary="fid", parent=parent, values={"fid": Measured(3.0)}, declarations=FID,
                        run_name="a / d / fid")
    writer.begin(record)
    writer.finish(record)

    assert main(["leaderboard", str(path), "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"**In progress.** suite run {parent} is in progress (pid 1 on elsewhere")
    assert "2 model(s) without a run yet are pending" in out
    lines = [ln for ln in out.splitlines() if ln.startswith(("| b ", "| c "))]
    assert lines and all("pending" in ln and "✗" not in ln for ln in lines)

    tracker.end(parent, "KILLED")  # Ctrl-C: the runner closes its suite run
    assert main(["leaderboard", str(path), "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "In progress" not in out and "no run recorded for this model" not in out
    lines = [ln for ln in out.splitlines() if ln.startswith(("| b ", "| c "))]
    assert lines and all("not run" in ln and "✗" not in ln for ln in lines)


def test_bench_score_prints_a_result_naming_a_class_folder_as_escapes(monkeypatch, capsys):
    """`bench score` prints the result (values, verdict, flag reasons that name classes)."""
    import bench.api
    from bench.cli import main

    class Result:
        flagged, verdict, tracking_uri = True, f"classes missing ({ESC})", None

        def __str__(self):
            return f"fid 3.1\nverdict: classes missing: {ESC} never shown"

    monkeypatch.setattr(bench.api, "evaluate", lambda *a, **k: Result())
    assert main(["score", "real", "fake", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err
    assert "verdict: classes missing: \\x1b[31mred\\x1b[0m never shown" in out
    assert "flagged: classes missing (\\x1b[31mred\\x1b[0m)" in err


def test_after_ctrl_c_the_runners_board_says_not_run_for_models_never_started(write_suite,
                                                                              tracking_uri, capsys):
    """The runner's own board after an interruption: `real` ran (then Ctrl-C in its second
    cell); `noisy` never started and reads not run, with no `verdict:` line."""
    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    path = write_suite("""\
        name: tiny
        datasets:
          digits: {source: digits}
        models:
          real: {source: reference, kind: real}
          noisy: {source: reference, kind: noise, sigma: 0.5}
        metrics:
          c: {source: test_constant}
          stop: {source: test_interrupt}
        """)
    report = run_suite(load_suite(path), tracking_uri=tracking_uri, progress=False)
    assert report.interrupted and [o.status for o in report.outcomes] == ["finished", "killed"]
    board = report.leaderboard
    noisy = [ln for ln in board.splitlines() if ln.startswith("| noisy")]
    assert noisy and all("not run" in ln and "✗" not in ln for ln in noisy)
    assert "✗ `noisy`" not in board and "no run recorded for this model" not in board
    assert "verdict: noisy" not in capsys.readouterr().out


def test_printable_escapes_exactly_control_surrogate_and_bidi_characters():
    """The regular expression behind `printable` (one pass over a megabyte board) is the
    definition: Unicode categories Cc and Cs and the bidirectional overrides, nothing else."""
    import unicodedata

    from bench.core.safe_names import _BIDI, printable

    text = "".join(map(chr, range(0x30000)))  # every assigned plane but the private ones
    want = "".join(ascii(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI else c
                   for c in text)
    assert printable(text) == want
    assert printable("a\nb\x1b", keep="\n") == "a\nb\\x1b" and printable(printable(ESC)) == printable(ESC)


def test_bench_leaderboard_of_a_suite_name_before_any_cell_finished(monkeypatch, capsys):
    """No cell finished and no suite file to list the models: one line says the run is in
    progress (exit 0); with no run in progress it is still the "no cell runs" error."""
    from bench import cli
    from bench.record.cell_record import LeaseStamp
    from bench.workflows import api  # where `bench leaderboard` opens the store

    live = [("run1", LeaseStamp(time.time(), "pid 9 on elsewhere").to_tags(), 0)]
    monkeypatch.setattr(api, "open_suite_store", lambda *a, **k: (_Tracker(pd.DataFrame(), live), "s"))
    assert cli.main(["leaderboard", "s"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("suite run run1 is in progress (pid 9 on elsewhere, last heartbeat")
    assert out.rstrip().endswith("no cell has finished yet.")
    monkeypatch.setattr(api, "open_suite_store", lambda *a, **k: (_Tracker(pd.DataFrame(), []), "s"))
    assert cli.main(["leaderboard", "s"]) == 2
    assert "no cell runs of suite 's'" in capsys.readouterr().err
