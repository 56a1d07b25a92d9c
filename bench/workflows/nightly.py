"""`bench nightly` as a function (bench.nightly): run a suite afresh, compare it with the
previous suite run (the known-good history before it as the baseline), record the verdict on
the suite run (so later nights leave its regressed cells out of their baselines) and build the
HTML board with the trends of the last runs. A night whose suite a live runner still holds is
skipped (SuiteInProgress), not run twice."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.core.errors import BenchError
from bench.workflows.compare import compare_runs
from bench.workflows.history import HISTORY_RUNS, TREND_RUNS, suite_trends
from bench.workflows.leaderboard import in_progress, suite_run_page
from bench.workflows.prepare import build_executor, check_threshold_names, checked, load_checked

if TYPE_CHECKING:
    import pandas as pd

    from bench.config.suite import Suite
    from bench.report.compare import CompareConfig
    from bench.run.runner import SuiteReport


# `bench nightly`'s exit code for a skipped night: sysexits.h's EX_TEMPFAIL ("try again
# later"). Not 0: nothing was judged, so a skipped night must not read as a pass; not 1 (a
# regression) nor 2 (a broken set-up): the night before is still running.
SKIPPED_EXIT = 75


class SuiteInProgress(BenchError):
    """The suite's previous run is still going (a live runner holds it, bench.record.lease):
    this night did not start. The message: 'suite run ID is in progress (RUNNER, last
    heartbeat N s ago)'."""


def live_run(suite: Suite, uri: str) -> str | None:
    """bench.workflows.leaderboard.in_progress for `suite` at `uri`; None when the store or
    the suite's experiment does not exist yet, or the store cannot say (the runner then
    reports the store as it would have)."""
    from bench.record.tracking import Tracker
    from bench.workflows.store import local_store

    path = local_store(uri)
    if path is not None and not path.exists():
        return None  # no store yet: nobody runs the suite in it
    try:
        exp_id = Tracker.experiment_of(uri, suite.experiment)
        if exp_id is None:
            return None
        return in_progress(Tracker(uri, experiment_id=exp_id), suite.name)
    except Exception:  # noqa: BLE001 - run_suite reports a store that cannot be read, in its words
        return None


@dataclass
class NightlyResult:
    report: SuiteReport  # the suite run (bench.run.runner.SuiteReport)
    table: pd.DataFrame | None = None  # the comparison; None on the suite's first run
    base_id: str | None = None
    text: str | None = None  # the comparison as logged (compare.md)
    page: str | None = None  # the HTML board (with trends when there were two suite runs)

    @property
    def regressions(self) -> int:
        return 0 if self.table is None else int((self.table["status"] == "regression").sum())

    @property
    def ok(self) -> bool:
        """No regression and no failed cell (`bench nightly` exits 1 otherwise)."""
        return not self.regressions and self.report.ok


def nightly(suite: Suite | str | os.PathLike, *, tracking_uri: str | None = None,
            cache_dir: str | None = None, executor: Any = None,
            executor_flags: Mapping[str, Any] | None = None, artifact_root: str | None = None,
            timeout: float | None = None, progress: bool = True,
            cfg: CompareConfig | None = None, history: int = HISTORY_RUNS,
            threshold: float = 0.05, thresholds: Mapping[str, float] | None = None,
            z: float = 4.0, trends: int = TREND_RUNS, page: bool = False,
            echo: Callable[[str], None] | None = None) -> NightlyResult:
    """Run `suite` (a suite file, or a loaded bench.config.suite.Suite) with every cell afresh,
    compare with the latest earlier suite run (`history` known-good runs as the baseline; a
    relative change over `threshold`, or `thresholds[value]`, and over `z` noise-band standard
    deviations is a regression; `cfg`, a bench.report.compare.CompareConfig, instead of the
    three), tag the run with the verdict and log compare.md / compare.json; with `trends` >= 2
    suite runs, log the HTML board with their trends as leaderboard.html. `page`: build the
    page even without trends. `echo`: where the board, the summary and the comparison are said
    as they come (the CLI prints). `executor`: an Executor, or the name of one that replaces
    the suite's; `executor_flags`: its options as command-line flags (`--workers` -> 2).

    Before any run: the suite is validated, its `models:/` URIs found, its thresholds' names
    checked (BenchError), and a live runner that still holds the suite (the previous night,
    still going) raises SuiteInProgress: the night is skipped, nothing runs."""
    from bench.record.cell_record import SuiteRunRecord
    from bench.record.tracking import Tracker
    from bench.report.compare import CompareConfig, render, verdict_tags
    from bench.run.runner import run_suite

    ready = checked(suite, tracking_uri) if not isinstance(suite, str | os.PathLike) \
        else load_checked(suite, tracking_uri)
    suite = ready.suite
    if cfg is None:
        cfg = CompareConfig(threshold=threshold, thresholds=dict(thresholds or {}), z=z,
                            history=history)
    check_threshold_names(suite, cfg.thresholds)
    if executor is None or isinstance(executor, str) or executor_flags:
        executor = build_executor(suite, executor, executor_flags)
    busy = live_run(suite, ready.uri)
    if busy is not None:
        raise SuiteInProgress(busy)
    say = echo or (lambda _text: None)
    report = run_suite(suite, tracking_uri=tracking_uri, force=True, progress=progress,
                       cache_dir=cache_dir, executor=executor, artifact_root=artifact_root,
                       timeout=timeout)
    say(report.leaderboard)
    say(report.summary())
    tracker = Tracker(report.tracking_uri, experiment_id=report.experiment_id)
    result = NightlyResult(report)
    if len([r for r in tracker.suite_runs(suite.name) if r != report.parent_run_id]) >= 1:
        base_id, new_id, table = compare_runs(tracker, suite.name, "latest", report.parent_run_id,
                                              history, cfg)
        text = f"base {base_id} -> new {new_id}\n\n{render(table)}"
        tracker.log_text(report.parent_run_id, text, "compare.md")
        tracker.log_text(report.parent_run_id, render(table, "json", suite=suite.name, base=base_id,
                                                      new=new_id, cfg=cfg), "compare.json")
        say(text)
        result.table, result.base_id, result.text = table, base_id, text
        # the verdict, remembered: later nights leave these cells of this run out of their baseline
        tracker.set_tags(report.parent_run_id, {**SuiteRunRecord.regressions_tags(result.regressions),
                                                **verdict_tags(table)})
    else:
        say("first run of this suite: nothing to compare yet")
        tracker.set_tags(report.parent_run_id, {**SuiteRunRecord.regressions_tags(0),
                                                **verdict_tags(None)})
    # the HTML board again, now that this run is finished: with the trends of the last runs
    trend = suite_trends(tracker, suite.name, trends, until=report.parent_run_id, cfg=cfg,
                         history=history)
    if trend is not None or page:
        result.page = suite_run_page(tracker, suite, report.parent_run_id, trend)
    if trend is not None and result.page is not None:
        tracker.log_text(report.parent_run_id, result.page, "leaderboard.html")
    return result
