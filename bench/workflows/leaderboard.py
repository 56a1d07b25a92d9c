"""The HTML board page of a suite's runs in a store (`bench leaderboard --format html`, the
page `bench nightly` writes): the one page builder (bench.report.page) with the runs' images
read through the tracker and, with two or more suite runs, the trends of the last of them."""

from __future__ import annotations

from bench.core.errors import BenchError
from bench.report.formats import IMAGE_MODELS
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


def in_progress(tracker, name: str) -> str | None:
    """'suite run ID is in progress (runner, last heartbeat N s ago)' while a live runner
    holds the suite (bench.record.lease), else None; a store that cannot say: None."""
    import time

    from bench.record.lease import live_suite_run

    try:
        live = live_suite_run(_suite_runs(tracker), name)
    except Exception:  # noqa: BLE001 - the board itself reports a store that cannot be read
        return None
    if live is None:
        return None
    run_id, stamp = live
    who = f"{stamp.runner}, " if stamp.runner else ""
    return (f"suite run {run_id} is in progress ({who}last heartbeat "
            f"{max(0.0, time.time() - stamp.heartbeat):.0f} s ago)")


def _suite_runs(tracker):
    """Where a board reads the suite's RUNNING suite runs: a SQL store's tables, through the
    reader its records come from (no MLflow client: importing it costs seconds per board);
    another store, or one that reader cannot read, through MLflow."""
    from bench.record.sql import SuiteRunsView

    sql = getattr(tracker, "sql", None)
    return tracker if sql is None else SuiteRunsView(sql, tracker.experiment_id, fallback=tracker)


def check_sort(sort: str, tables) -> None:
    """`--sort` names a value of the board (a typo would silently sort by the headline)."""
    from bench.core.registry import did_you_mean

    names = list(dict.fromkeys(str(c) for t in tables for c in t.mean.columns))
    if sort not in names:
        raise BenchError(f"--sort {sort}: no such value on this board.{did_you_mean(sort, names)} "
                         f"Values: {', '.join(names) or '(none)'}.")


def leaderboard(tracker, name: str, *, suite=None, run_id: str | None = None,
                sort: str | None = None, all_models: bool = False, fmt: str = "markdown",
                trends: int = 0, ui_url: str | None = None, images: int = IMAGE_MODELS,
                log_to: str | None = None) -> str:
    """The board of a suite's cell runs in `fmt` (bench.report.leaderboard.FORMATS; html: the
    page, with the trends of the last `trends` suite runs): the latest run of every cell, or
    one suite run's (`run_id`). With `suite` (a Suite, bench.workflows.store.suite_file), the
    suite as declared (`all_models`: also models no longer in it). `log_to`: a run id that
    keeps the text as an artifact (the `leaderboard` entry point of `mlflow run`)."""
    from bench.report.leaderboard import build_leaderboard, render

    if run_id:
        runs = suite_run_values(tracker, tracker.cell_runs(suite=name, failed=True), run_id)
    else:
        runs = tracker.cell_runs(suite=name, failed=True)
    # a live runner holds the suite: models without a run yet are pending, not failed
    running = None if run_id else in_progress(tracker, name)
    if runs.empty and running is None:
        raise BenchError(f"no cell runs of suite '{name}' at {tracker.uri}. Run `bench run` "
                         "first, or pass --tracking-uri / --experiment.")
    # a suite file: the board is the suite as declared (models removed from it are left out,
    # unless --all); a suite name: every model that has runs (and no suite module imported:
    # it brings torch, seconds and hundreds of MiB a board of a suite name never needs)
    declared = None
    if suite is not None and not all_models:
        from bench.config.board_suite import declared_rows

        declared = declared_rows(suite)
    if runs.empty and not declared:  # in progress, nothing finished, no suite file to list
        return f"{running}: no cell has finished yet."
    tables = build_leaderboard(runs, sort_by=sort, declared=declared, in_progress=running)
    if sort:
        check_sort(sort, tables)
    published = suite.published if suite is not None else []
    if fmt == "html":
        text = leaderboard_page(tracker, name, tables, runs, last=trends, until=run_id,
                                published=published, ui_url=ui_url, images=images)
    else:
        from bench.report.published import with_published

        text = with_published(render(tables, fmt), fmt, tables, published)
    if log_to:
        ext = {"markdown": "md", "latex": "tex"}.get(fmt, fmt)
        tracker.log_text(log_to, text, f"leaderboard.{ext}")
    return text
