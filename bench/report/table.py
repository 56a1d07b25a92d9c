"""The leaderboard's table of one dataset (`Table`): models x values as pandas frames, with the
values' declarations, the rows' states and flags, and the derived frames (uncertainty,
goodness) the ranks read. Built by bench.report.leaderboard.build_leaderboard; ranked by
bench.report.ranking; turned into a typed `Board` by bench.report.board_builder, which is what the
renderers read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.record.flags import Flag
from bench.record.values import Value
from bench.report.board import NOT_RUN, PENDING, REFERENCE_LABEL, UNRUN_STATES  # noqa: F401 - re-exported


@dataclass
class Table:
    dataset: str
    mean: pd.DataFrame  # models x columns (score and diagnostic values)
    std: pd.DataFrame
    n: pd.DataFrame
    lo: pd.DataFrame  # the logged 95% interval of single runs (mean over repeats), or NaN
    hi: pd.DataFrame
    values: dict[str, Value]  # column -> declaration
    reference: dict[str, bool]  # model -> calibration row (not ranked)
    sort_by: str | None
    primaries: list[str] = field(default_factory=list)  # one score per metric, in run order
    # column -> per-model target (target ideals only; NaN where none could be resolved)
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    target_source: dict[str, str] = field(default_factory=dict)  # column -> "held_out row ..."
    held_out: str | None = None  # the model whose values are `ref` targets
    data: pd.DataFrame = field(default_factory=pd.DataFrame)  # reference-role values, once
    # the cell runs behind the table (model, metric, repeat, run_id, reference), values or
    # not: run links and images in HTML
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    # mean within-run variance (from each run's logged 95% interval), per model and column
    within: pd.DataFrame = field(default_factory=pd.DataFrame)
    # -1: the value is an upper bound (≤ x), +1 a lower bound (≥ x), NaN: a number
    bound: pd.DataFrame = field(default_factory=pd.DataFrame)
    flags: dict[str, list[Flag]] = field(default_factory=dict)  # model -> its flags here
    # cells that failed (no finished run): model, metric, repeat, error
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    metric_of: dict[str, str] = field(default_factory=dict)  # column -> the metric logging it
    headline: str | None = None  # the first of `headline_pair`: the rows' default sort
    headline_pair: list[str] = field(default_factory=list)  # what orders passing models (`places`)
    unrun: dict[str, str] = field(default_factory=dict)  # declared model -> PENDING | NOT_RUN
    in_progress: str | None = None  # "suite run ... in progress (...)": the board may still change
    _failed: set[str] | None = field(default=None, repr=False, compare=False)  # see `failed`
    # derived frames (uncertainty, goodness, ranks), computed once per row order: a board
    # asks for them per column group and per format (cleared by `_reorder`)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ranked(self) -> list[str]:
        """Models that compete, in table order. (Memoised: ranking asks once per model, and
        iterating a pyarrow-backed index costs about 2 ms a pass at 2,000 models.)"""
        if "ranked" not in self._memo:
            self._memo["ranked"] = [m for m in self.mean.index.tolist()
                                    if not self.reference.get(m, False)]
        return list(self._memo["ranked"])

    def gated(self, model: str) -> bool:
        """True when a gate flag keeps the model below every model that passes."""
        return any(f.gate for f in self.flags.get(model, []))

    def failed(self, model: str) -> bool:
        """True when the model has failed cells and no value at all here. (The set is
        computed once: `failures` and which cells hold a value never change after build.)"""
        if self._failed is None:
            with_fail = set() if self.failures.empty else set(map(str, self.failures["model"]))
            has = self.mean.notna().any(axis=1) if len(self.mean.columns) else \
                pd.Series(False, index=self.mean.index)
            self._failed = {m for m in with_fail if not (m in has.index and bool(has[m]))}
        return model in self._failed

    def tier(self, model: str) -> int:
        """0 passes, 1 flagged by a gate, 2 failed (no value), 3 pending or not run (no run
        recorded: never ranked, not a failure): the order before any value."""
        if model in self.unrun:
            return 3
        return 2 if self.failed(model) else (1 if self.gated(model) else 0)

    def state(self, model: str) -> str | None:
        """PENDING or NOT_RUN for a declared model without a recorded run, else None."""
        return self.unrun.get(model)

    def failure_text(self, model: str) -> str:
        """'metric: first error line' of each failed cell of a model, '; '-joined."""
        if self.failures.empty:
            return ""
        f = self.failures[self.failures["model"] == model]
        seen: dict[str, str] = {}
        for metric, err in zip(f["metric"], f["error"], strict=True):
            seen.setdefault(str(metric), first_line(err))
        return "; ".join(f"{k}: {v}" for k, v in seen.items())

    @property
    def references(self) -> list[str]:
        return [m for m in self.mean.index.tolist() if self.reference.get(m, False)]

    @property
    def scores(self) -> list[str]:
        return [c for c in self.mean.columns if self.values[c].role == "score"]

    @property
    def diagnostics(self) -> list[str]:
        return [c for c in self.mean.columns if self.values[c].role != "score"]

    @property
    def rank_columns(self) -> list[str]:
        """The values the summary ranks on: each metric's primary, when it can be ranked."""
        return [c for c in self.primaries if c in self.scores and self.rankable(c)]

    @property
    def repeats(self) -> int:
        return int(np.nanmax(self.n.to_numpy())) if self.n.size else 0

    def rankable(self, col: str) -> bool:
        v = self.values[col]
        return v.role == "score" and (v.ideal != "target" or bool(self.targets[col].notna().any()))

    def header(self, col: str) -> str:
        v = self.values[col]
        if v.ideal == "target" and col in self.target_source and self.target_source[col] != "ref":
            src = self.target_source[col]
            return f"{col} →{src}"
        return f"{col} {v.symbol}"

    def uncertainty(self) -> pd.DataFrame:
        """95% half-width of each cell's mean over its n runs.

        With logged intervals (within-run variance w, the mean over runs of
        ((hi - lo) / 3.92)^2): 1.96 sqrt((s^2 + w) / n), s the spread over repeats. The runs'
        own variance is known, so two repeats need no Student t with one degree of freedom
        (12.7 instead of 1.96), and a spread that happens to be near 0 cannot hide it.
        Without logged intervals the spread is all there is: the t interval of the mean.
        One run without an interval: NaN (unknown: treated as exact)."""
        if "uncertainty" not in self._memo:
            self._memo["uncertainty"] = self._uncertainty()
        return self._memo["uncertainty"]

    def _uncertainty(self) -> pd.DataFrame:
        from scipy.special import stdtrit  # Student t quantile; scipy.stats costs 1 s to import

        n = self.n.astype(float)
        within = self.within.reindex_like(self.mean) if not self.within.empty else \
            pd.DataFrame(np.nan, index=self.mean.index, columns=self.mean.columns)
        s2 = self.std.fillna(0.0) ** 2
        combined = 1.96 * np.sqrt((s2 + within) / n)
        tq = n.map(lambda k: float(stdtrit(k - 1, 0.975)) if k > 1 else np.nan)
        spread = tq * self.std / np.sqrt(n)
        return combined.where(within.notna(), spread)

    def goodness(self) -> pd.DataFrame:
        """Higher = better, per cell: x, -x, or -|x - target|."""
        if "goodness" not in self._memo:
            self._memo["goodness"] = self._goodness()
        return self._memo["goodness"]

    def _goodness(self) -> pd.DataFrame:
        out = pd.DataFrame(index=self.mean.index, columns=self.mean.columns, dtype=float)
        for c in self.mean.columns:
            v, x = self.values[c], self.mean[c]
            if v.ideal == "higher":
                out[c] = x
            elif v.ideal == "lower":
                out[c] = -x
            else:
                out[c] = -(x - self.targets[c]).abs()
        return out


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("Traceback"):  # a crash: its last line says what
        return lines[-1][:200]
    return lines[0][:200] if lines else "(no error recorded)"
