"""The HTML board page of a suite's runs in a store (`bench leaderboard --format html`, the
page `bench nightly` writes): the one page builder (bench.report.page) with the runs' images
read through the tracker and, with two or more suite runs, the trends of the last of them."""

from __future__ import annotations

from bench.core.errors import BenchError
from bench.report.html import IMAGE_MODELS
from bench.workflows.history import suite_run_values, suite_trends


def leaderboard_page(tracker, name: str, tables, runs=None, *, trends=None, last: int = 0,
                     until: str | None = None, published=None, ui_url: str | None = None,
                     images: int = IMAGE_MODELS) -> str:
    """The self-contained page of `tables` (bench.report.leaderboard.build_leaderboard), with
    the image artifacts of the runs read through the tracker, the comparison figures of
    `runs` and `trends` (else, with `last` >= 2, the trends of the last `last` suite runs up
    to `until`). `ui_url`: the MLflow UI for run links (default: BENCH_UI_URL or an http store)."""
    from datetime import UTC, datetime

    from bench.report.html import default_ui_url, safe_ui_url
    from bench.report.page import board_page

    if ui_url and not safe_ui_url(ui_url):
        raise BenchError(f"--ui-url must be an http(s) address of the MLflow UI, got '{ui_url}'")
    if trends is None and last:
        trends = suite_trends(tracker, name, last, until=until)
    page, _ = board_page(tables, runs, tracker.client, name=name,
                         experiment_id=tracker.experiment_id,
                         ui_url=ui_url or default_ui_url(tracker.uri), published=published,
                         trends=trends, max_models=images,
                         generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return page


def suite_run_page(tracker, suite, parent: str, trend) -> str | None:
    """One suite run's HTML board (the suite as declared), with `trend` when given; None when
    the run has no cells.json (the runner was stopped before the end)."""
    from bench.config.suite import declared_pairs
    from bench.report.leaderboard import build_leaderboard

    try:
        runs = suite_run_values(tracker, tracker.cell_runs(suite=suite.name, failed=True), parent)
    except BenchError:  # no cells.json: the runner was stopped before the end
        return None
    tables = build_leaderboard(runs, declared=declared_pairs(suite))
    return leaderboard_page(tracker, suite.name, tables, runs, trends=trend)
