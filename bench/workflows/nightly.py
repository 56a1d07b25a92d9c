"""`bench nightly` as a function: run a suite afresh, compare it with the previous suite run
(the known-good history before it as the baseline), record the verdict on the suite run (so
later nights leave its regressed cells out of their baselines) and build the HTML board with
the trends of the last runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.workflows.compare import compare_runs
from bench.workflows.history import HISTORY_RUNS, TREND_RUNS, suite_trends
from bench.workflows.leaderboard import suite_run_page

if TYPE_CHECKING:
    import pandas as pd

    from bench.config.suite import Suite
    from bench.report.compare import CompareConfig
    from bench.run.runner import SuiteReport


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


def nightly(suite: Suite, *, tracking_uri: str | None = None, cache_dir: str | None = None,
            executor: Any = None, artifact_root: str | None = None, timeout: float | None = None,
            progress: bool = True, cfg: CompareConfig | None = None, history: int = HISTORY_RUNS,
            trends: int = TREND_RUNS, page: bool = False,
            echo: Callable[[str], None] | None = None) -> NightlyResult:
    """Run `suite` with every cell afresh, compare with the latest earlier suite run (`history`
    known-good runs as the baseline, thresholds from `cfg`), tag the run with the verdict and
    log compare.md / compare.json; with `trends` >= 2 suite runs, log the HTML board with
    their trends as leaderboard.html. `page`: build the page even without trends. `echo`:
    where the board, the summary and the comparison are said as they come (the CLI prints)."""
    from bench.record.cell_record import SuiteRunRecord
    from bench.record.tracking import Tracker
    from bench.report.compare import render, verdict_tags
    from bench.run.runner import run_suite

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
