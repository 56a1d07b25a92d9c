"""`bench compare`'s window: which suite runs are the base, the new run and the history (the
base and the runs before it, without the nights recorded as regressed), and accepting a run
as the baseline on purpose. The comparison itself is bench.report.compare."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.core.errors import BenchError
from bench.workflows.history import HISTORY_RUNS, suite_run_values

if TYPE_CHECKING:
    import pandas as pd

HISTORY_POOL = 60  # suite runs compare walks back at most for them (past regressed nights)


def pick_run(name: str, finished: list[str], which: str, exclude: str | None = None) -> str:
    """A suite run id for `latest` / `previous` (newest first in `finished`, without `exclude`)
    or an id as given."""
    pool = [r for r in finished if r != exclude]
    if which == "latest":
        if not pool:
            raise BenchError(f"suite '{name}' has no finished suite run to compare.")
        return pool[0]
    if which == "previous":
        if len(pool) < (2 if exclude is None else 1):
            raise BenchError(f"suite '{name}' has fewer than two finished runs: nothing to "
                             "compare yet. Run the suite again (or `bench nightly`) first.")
        return pool[1] if exclude is None else pool[0]
    return which


def history_nights(tracker, all_runs, ids: list[str], new, history: int) -> list:
    """The base run and the runs before it (`ids`, newest first) as compare's history
    (bench.report.compare.Night, with the verdicts their nightly recorded): walked back until
    every cell of `new` that the base has has `history` runs not recorded as regressed for
    it, an accepted baseline run, or HISTORY_POOL runs."""
    from bench.report.compare import Night, marks_of

    nights: list[Night] = []
    wanted = [k for k in Night(new).agg.index]
    count = dict.fromkeys(wanted, 0)
    for rid in ids[:HISTORY_POOL]:
        try:
            runs = suite_run_values(tracker, all_runs, rid)
        except BenchError:
            if not nights:
                raise  # the base itself must be a suite run
            continue  # a suite run without cells.json (interrupted before the end)
        night = Night(runs, *marks_of(tracker.client.get_run(rid).data.tags))
        if not nights:  # the base: only its cells are compared
            count = {k: 0 for k in wanted if k in night.agg.index}
        nights.append(night)
        for k in count:
            if k in night.agg.index and (night.regressed is None or k not in night.regressed):
                count[k] += 1
        if night.accepted or all(c >= history for c in count.values()):
            break
    return nights


def compare_runs(tracker, name: str, base: str = "previous", new: str = "latest",
                 history: int = HISTORY_RUNS, cfg=None) -> tuple[str, str, pd.DataFrame]:
    """(base run id, new run id, the comparison) for `latest` / `previous` / run ids. The
    history is the base and the runs before it (not the newest runs), per cell without the
    runs recorded as regressed for it. `cfg`: a bench.report.compare.CompareConfig."""
    from bench.report.compare import compare, judge

    finished = tracker.suite_runs(name, limit=500)  # newest first; ids only, one query
    new_id = pick_run(name, finished, new)
    base_id = pick_run(name, finished, base, exclude=new_id if base in ("latest", "previous") else None)
    if base_id == new_id:
        raise BenchError(f"base and new are the same suite run ({new_id}): compare two runs, e.g. "
                         f"`bench compare {name} previous latest`.")
    all_runs = tracker.cell_runs(suite=name)
    new_runs = suite_run_values(tracker, all_runs, new_id)
    if not history:
        return base_id, new_id, compare(suite_run_values(tracker, all_runs, base_id), new_runs, None, cfg)
    older = finished[finished.index(base_id) + 1:] if base_id in finished else []
    nights = history_nights(tracker, all_runs, [base_id, *(r for r in older if r != new_id)],
                            new_runs, history)
    judge(nights[::-1], cfg, tables_from=len(nights))  # the verdicts no nightly recorded
    return base_id, new_id, compare(nights[0], new_runs, nights, cfg)


def accept(tracker, name: str, which: str = "latest") -> str:
    """Make a suite run (`latest` or an id) the baseline on purpose (tag bench.baseline=accepted):
    later comparisons measure changes from it. Returns its id."""
    from bench.report.compare import accepted_tags

    finished = tracker.suite_runs(name, limit=500)
    rid = pick_run(name, finished, which)
    if rid not in finished:
        raise BenchError(f"--accept {which}: not a finished suite run of '{name}' at {tracker.uri}.")
    tracker.set_tags(rid, accepted_tags())
    return rid
