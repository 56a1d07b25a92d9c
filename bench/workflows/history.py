"""A suite's finished runs read back: the cell runs one suite run covered, the last N suite
runs (for trends and history), the trends table of the HTML board and one model's values
over time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.core.errors import BenchError

if TYPE_CHECKING:
    import pandas as pd

TREND_RUNS = 7  # suite runs the HTML board's trends cover by default
HISTORY_RUNS = 10  # known-good earlier suite runs per cell in compare's baseline by default


def suite_run_values(tracker, all_runs, parent: str):
    """The finished/cached cell runs a suite run covered (from its cells.json)."""
    cells = tracker.suite_cells(parent)
    if cells is None:
        raise BenchError(f"run {parent} is not a suite run of this experiment (no cells.json).")
    ids = {c["run_id"] for c in cells.values() if c["status"] in ("finished", "cached", "failed")}
    return all_runs[all_runs["run_id"].isin(ids)] if not all_runs.empty else all_runs


def suite_points(tracker, name: str, all_runs, last: int = 50, until: str | None = None,
                 tags: dict[str, dict[str, str]] | None = None) -> list[tuple[str, str, pd.DataFrame]]:
    """(start time, suite run id, its cell runs) of the suite's last finished runs, oldest
    first; `until`: the newest one to take (a suite run id); `tags`: filled with each taken
    run's tags."""
    from datetime import UTC, datetime

    ids = tracker.suite_runs(name, limit=max(last, 50))  # newest first
    if until in ids:
        ids = ids[ids.index(until):]
    points: list[tuple[str, str, pd.DataFrame]] = []
    for rid in ids:
        if len(points) == last:
            break
        try:
            runs = suite_run_values(tracker, all_runs, rid)
        except BenchError:  # a suite run without cells.json (interrupted before the end)
            continue
        run = tracker.client.get_run(rid)
        start = run.info.start_time
        if tags is not None:
            tags[rid] = dict(run.data.tags)
        points.append((datetime.fromtimestamp(start / 1000, UTC).strftime("%Y-%m-%d %H:%M"), rid, runs))
    return points[::-1]


def suite_trends(tracker, name: str, last: int, until: str | None = None, cfg=None,
                 history: int = HISTORY_RUNS):
    """The trends table of the HTML board (bench.report.compare.trends) over the last `last` suite
    runs, or None with fewer than two."""
    from bench.report.compare import marks_of, trends

    if last < 2 or len(tracker.suite_runs(name, limit=2)) < 2:
        return None  # no trend from one suite run: skip reading every cell run again
    # the runs before the window are the first shown runs' history, as in `bench compare`;
    # their recorded verdicts keep regressed nights out of the later nights' baselines
    tags: dict[str, dict[str, str]] = {}
    points = suite_points(tracker, name, tracker.cell_runs(suite=name), last + history, until, tags)
    marks = {rid: marks_of(t) for rid, t in tags.items()}
    return trends(points, history=history, cfg=cfg, last=last, marks=marks) if len(points) >= 2 else None


def model_history(tracker, name: str, model: str) -> pd.DataFrame:
    """One model's values over the suite's finished runs, oldest first
    (bench.report.leaderboard.history_table), so that a slow drift shows that a
    night-to-night comparison would miss."""
    from bench.report.leaderboard import history_table

    all_runs = tracker.cell_runs(suite=name)
    known = sorted(set(all_runs["model"])) if not all_runs.empty else []
    if model not in known:
        raise BenchError(f"no finished cell runs of model '{model}' in suite '{name}' at "
                         f"{tracker.uri}; models: {', '.join(known) or '(none)'}.")
    points = suite_points(tracker, name, all_runs)
    if not points:
        raise BenchError(f"suite '{name}' has no finished suite run at {tracker.uri}.")
    return history_table(points, model)
