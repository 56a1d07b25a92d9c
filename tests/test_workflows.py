"""The workflows behind `bench nightly`, `bench compare` and `bench leaderboard --history`,
called from Python (bench.workflows): what the command line prints, as values."""

from pathlib import Path

from tiny_suites import INSTANT

from bench.config.suite import load_suite
from bench.workflows.compare import accept, compare_runs
from bench.workflows.history import model_history
from bench.workflows.leaderboard import suite_run_page
from bench.workflows.nightly import nightly
from bench.workflows.store import open_suite_store


def test_nightly_compare_and_history_from_python(write_suite, tracking_uri, tmp_path):
    path = write_suite(INSTANT)
    said: list[str] = []
    first = nightly(load_suite(path), tracking_uri=tracking_uri, history=0, progress=False,
                    echo=said.append)
    assert first.table is None and first.regressions == 0 and first.ok
    assert first.page is None  # one suite run: no trends, and no page asked for
    assert said[0] == first.report.leaderboard and said[-1].startswith("first run of this suite")
    second = nightly(load_suite(path), tracking_uri=tracking_uri, history=0, trends=2,
                     progress=False)
    old, new = first.report.parent_run_id, second.report.parent_run_id
    assert second.base_id == old and second.regressions == 0 and second.ok
    assert second.text is not None and second.text.startswith(f"base {old} -> new {new}\n\n")
    assert second.page is not None and "Leaderboard: tiny" in second.page

    # the same window through compare's own entry, on the store opened from the suite file
    tracker, name = open_suite_store(str(path), tracking_uri)
    assert name == "tiny"
    base_id, new_id, table = compare_runs(tracker, name, "previous", "latest", history=0)
    assert (base_id, new_id) == (old, new)
    assert second.table is not None
    assert table[["model", "value", "status"]].equals(second.table[["model", "value", "status"]])
    # one model over both suite runs, oldest first
    assert len(model_history(tracker, name, "real")) == 2
    # the page of one suite run without trends: the one builder the runner also logs with
    page = suite_run_page(tracker, load_suite(path), new, None)
    assert page is not None and "Leaderboard: tiny" in page and '<section id="trends">' not in page
    # two suite runs make a trend: the page with it replaces the runner's on the suite run
    (tmp_path / "dl").mkdir()
    logged = tracker.client.download_artifacts(new, "leaderboard.html", str(tmp_path / "dl"))
    assert Path(logged).read_text() == second.page
    assert accept(tracker, name) == new
    assert tracker.client.get_run(new).data.tags["bench.baseline"] == "accepted"
