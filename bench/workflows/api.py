"""The workflows over a suite's runs as functions of a suite file or a suite name: what
`bench leaderboard`, `bench compare` and `bench nightly` print, as values. `import bench`
names them (bench.leaderboard, bench.compare, bench.accept, bench.nightly, bench.history,
bench.trends); the command line calls the same functions and prints what they return.

Each opens the store as the command does (bench.workflows.store.open_suite_store: the
suite's store and experiment unless given, checked; reading never creates a store) and
raises BenchError, with the command's message, for a mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from bench.core.errors import BenchError
from bench.report.formats import IMAGE_MODELS
from bench.workflows.history import HISTORY_RUNS, TREND_RUNS
from bench.workflows.nightly import NightlyResult, SuiteInProgress, nightly
from bench.workflows.store import open_suite_store, suite_file

if TYPE_CHECKING:
    import pandas as pd

    from bench.report.compare import CompareConfig


def _config(history: int, threshold: float, thresholds: Mapping[str, float] | None,
            z: float) -> CompareConfig:
    from bench.report.compare import CompareConfig

    return CompareConfig(threshold=threshold, thresholds=dict(thresholds or {}), z=z,
                         history=history)


def leaderboard(suite: str, *, tracking_uri: str | None = None, experiment: str | None = None,
                run_id: str | None = None, sort: str | None = None, all_models: bool = False,
                format: str = "markdown", trends: int = TREND_RUNS, ui_url: str | None = None,
                images: int = IMAGE_MODELS, log_to: str | None = None) -> str:
    """The leaderboard of a suite file's or a suite name's runs, as `bench leaderboard` prints
    it: the latest run of every cell (or one suite run, `run_id`), in `format` (markdown, csv,
    json, latex, or html: the self-contained page, with the trends of the last `trends`
    suite runs and the images of the first `images` models). A suite file's board is the
    suite as declared (`all_models`: also models no longer in it). `log_to`: also log the
    text as an artifact of this MLflow run (the `mlflow run` entry point's run)."""
    from bench.workflows.leaderboard import leaderboard as board

    tracker, name = open_suite_store(suite, tracking_uri, experiment)
    return board(tracker, name, suite=suite_file(suite), run_id=run_id, sort=sort,
                 all_models=all_models, fmt=format, trends=trends, ui_url=ui_url, images=images,
                 log_to=log_to)


def history(suite: str, model: str, *, tracking_uri: str | None = None,
            experiment: str | None = None) -> pd.DataFrame:
    """One model's values over the suite's finished runs, oldest first (`bench leaderboard
    SUITE --model MODEL --history`): a slow drift shows that a night-to-night comparison
    would miss."""
    from bench.workflows.history import model_history

    tracker, name = open_suite_store(suite, tracking_uri, experiment)
    return model_history(tracker, name, model)


def trends(suite: str, last: int = TREND_RUNS, *, until: str | None = None,
           tracking_uri: str | None = None, experiment: str | None = None,
           history: int = HISTORY_RUNS, threshold: float = 0.05,
           thresholds: Mapping[str, float] | None = None, z: float = 4.0) -> pd.DataFrame | None:
    """Each value of each cell over the last `last` suite runs (up to the suite run `until`),
    with compare's baseline, noise band and verdict per night (the HTML board's trends;
    bench.report.compare.trends); None with fewer than two suite runs."""
    from bench.workflows.history import suite_trends

    tracker, name = open_suite_store(suite, tracking_uri, experiment)
    return suite_trends(tracker, name, last, until=until,
                        cfg=_config(history, threshold, thresholds, z), history=history)


@dataclass
class Comparison:
    """`bench compare`'s result: the suite runs compared and one row per cell and value."""

    suite: str
    base_id: str
    new_id: str
    table: pd.DataFrame  # bench.report.compare.compare: value, baseline, band, status, ...
    cfg: CompareConfig

    @property
    def regressions(self) -> int:
        return int((self.table["status"] == "regression").sum())

    @property
    def ok(self) -> bool:
        """No regression (`bench compare` exits 1 otherwise)."""
        return not self.regressions

    def render(self, fmt: str = "markdown") -> str:
        """As `bench compare` prints it (bench.report.compare.FORMATS)."""
        from bench.report.compare import render

        text = render(self.table, fmt, suite=self.suite, base=self.base_id, new=self.new_id,
                      cfg=self.cfg)
        return (f"base {self.base_id} -> new {self.new_id}\n\n" if fmt == "markdown" else "") + text


def compare(suite: str, base: str = "previous", new: str = "latest", *,
            tracking_uri: str | None = None, experiment: str | None = None,
            history: int = HISTORY_RUNS, threshold: float = 0.05,
            thresholds: Mapping[str, float] | None = None, z: float = 4.0) -> Comparison:
    """Compare two suite runs (ids, `latest` or `previous`) as `bench compare` does: each
    value of each cell against the median of its `history` known-good earlier runs (the base
    and the runs before it); a regression moved the wrong way by more than `threshold` (or
    `thresholds[value]`) and by more than `z` standard deviations of the noise band."""
    from bench.workflows.compare import compare_runs

    tracker, name = open_suite_store(suite, tracking_uri, experiment)
    if base == new:
        raise BenchError(f"base and new are both '{new}': compare two suite runs, e.g. "
                         f"`bench compare {name} previous latest`.")
    cfg = _config(history, threshold, thresholds, z)
    base_id, new_id, table = compare_runs(tracker, name, base, new, history, cfg)
    return Comparison(name, base_id, new_id, table, cfg)


class Accepted(NamedTuple):
    suite: str
    run_id: str


def accept(suite: str, run: str = "latest", *, tracking_uri: str | None = None,
           experiment: str | None = None) -> Accepted:
    """Make a suite run (`latest` or an id) the baseline on purpose (`bench compare SUITE
    --accept RUN`; tag bench.baseline=accepted): later comparisons measure changes from it,
    and the runs before it are no longer their history."""
    from bench.workflows.compare import accept as accept_run

    tracker, name = open_suite_store(suite, tracking_uri, experiment)
    return Accepted(name, accept_run(tracker, name, run))


__all__ = ["Accepted", "Comparison", "NightlyResult", "SuiteInProgress", "accept", "compare",
           "history", "leaderboard", "nightly", "trends"]
