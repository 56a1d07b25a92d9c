"""MLflow cell runs -> leaderboard tables that say what each number means and how sure it is.

Every value carries its declaration (bench.record.values: role, ideal, aspect; logged with each
run as the `bench.values` tag), and the tables follow it:

- **score** values are ranked and bolded; **diagnostic** values are shown in a second table,
  never ranked; **reference** values (properties of the data, e.g. `real_val_acc`) are shown
  once per dataset, not per model.
- ideals: higher, lower, or a target (a number, or the value the held-out real row gets in
  the same suite); a target ranks by distance.
- uncertainty: each cell has a 95% half-width: from repeats (t interval of the mean) or,
  for a single run, from the interval the metric logged (`<value>.lo`/`.hi`). Numbers are
  printed with the digits that half-width supports.
- ranks are dominance ranks: 1 + the number of models that are *separated* from this one
  and better (difference beyond the combined half-widths, sqrt(u_a² + u_b²)); models within
  each other's uncertainty share a rank. A value is bold only when one model alone has rank
  1, i.e. it is separated from the runner-up.
- the summary orders models by verdict tier (pass, flagged by a gate, failed), then by the
  dominance rank of one headline value (`place`); the mean rank per aspect (quality,
  diversity, conditioning, memorisation, utility) is shown as a view of strengths, never
  summed into an order, with clear wins (primaries where the model alone is best).

Reference rows (calibration models such as real data or noise) are shown apart and never
ranked. Rendered as markdown, CSV, JSON or LaTeX here; HTML is bench/report/html.py. This
module reads a DataFrame (Tracker.cell_runs) and never talks to MLflow itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.core.safe_names import md_code, md_text, printable
from bench.record.cell_record import FINISHED
from bench.record.flags import Flag
from bench.record.flags import merge as merge_flags
from bench.record.values import ASPECTS, BOUND, HI, LO, Value, is_interval
from bench.report.gates import board_flags

FORMATS = ("markdown", "csv", "json", "latex", "html")
TEXT_FORMATS = ("markdown", "csv", "json", "latex")  # render(); html needs artifacts: bench.report.html
REFERENCE_LABEL = "reference (not ranked)"
# a declared model with no recorded run: its cells are still to come while a suite run is in
# progress, else they never started (the run was interrupted, or stopped before them). Neither
# is a failure: such a model is shown, never ranked, and sorted after every model with a run
PENDING, NOT_RUN = "pending", "not run"
UNRUN_STATES = (PENDING, NOT_RUN)


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
        """Models that compete, in table order."""
        return [m for m in self.mean.index if not self.reference.get(m, False)]

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
        return [m for m in self.mean.index if self.reference.get(m, False)]

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


# ------------------------------------------------------------------ building


def _latest(runs: pd.DataFrame) -> pd.DataFrame:
    """The latest run of each cell (a re-run replaces, it does not add a repeat), oldest first;
    a finished run wins over a failed one."""
    defaults = {"run_id": "", "held_out": False, "values": None, "primary": "",
                "status": FINISHED, "error": "", "flags": None}
    for col, default in defaults.items():  # frames of older callers lack the newer columns
        if col not in runs.columns:
            runs = runs.assign(**{col: [default] * len(runs)})
    runs = runs.assign(status=runs["status"].fillna(FINISHED), error=runs["error"].fillna(""),
                       values=[v if isinstance(v, dict) else {} for v in runs["values"]],
                       flags=[list(f) if isinstance(f, list) else [] for f in runs["flags"]],
                       _ok=runs["status"].eq(FINISHED))
    latest = runs.sort_values(["_ok", "start_time"], ascending=False).drop_duplicates(
        ["dataset", "model", "metric", "repeat"])
    return latest.sort_values("start_time", kind="stable").drop(columns="_ok")


def _long(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell run, value), in run order, with the value's declaration; interval
    ends and bound marks become `lo`/`hi`/`bound` columns of their value's row. The first
    metric run names the first primary, so the default sort is the suite's first metric."""
    metric_cols = [c for c in runs.columns if c.startswith("m:")]
    ids = ["dataset", "model", "metric", "repeat", "reference", "held_out", "values", "primary",
           "start_time"]
    if not metric_cols:
        return pd.DataFrame(columns=[*ids, "value", "x", "lo", "hi", "bound", "decl", "col"])
    long = runs.melt(id_vars=ids, value_vars=metric_cols, var_name="value",
                     value_name="x").dropna(subset=["x"])
    long = long.sort_values("start_time", kind="stable")
    long["value"] = long["value"].str[2:]
    keys = ["dataset", "model", "metric", "repeat"]
    is_companion = long["value"].map(is_interval).astype(bool)  # astype: an empty frame stays rows
    companions = long[is_companion]
    long = long[~is_companion].copy()
    for suffix, col in ((LO, "lo"), (HI, "hi"), (BOUND, "bound")):
        b = companions[companions["value"].str.endswith(suffix)].assign(
            value=lambda d, s=suffix: d["value"].str[: -len(s)])[keys + ["value", "x"]]
        long = long.merge(b.rename(columns={"x": col}), on=keys + ["value"], how="left")
    long["decl"] = [vals.get(v) or Value("diagnostic") for vals, v in zip(long["values"], long["value"], strict=True)]
    # the same value from several metrics (real_val_acc from gan_train and gan_test): keep one
    # column when they agree, otherwise name each by its metric
    span = long.groupby(["dataset", "model", "value", "repeat"])["x"].agg(["max", "min"])
    spread = span["max"] - span["min"]
    clash = spread[spread > 1e-9].reset_index()[["dataset", "value"]].drop_duplicates()
    clash_keys = set(map(tuple, clash.values))
    multi = long.groupby(["dataset", "value"])["metric"].nunique()
    rename = {k for k in multi[multi > 1].index if k in clash_keys}
    long["col"] = [f"{m}.{v}" if (d, v) in rename else v
                   for d, m, v in zip(long["dataset"], long["metric"], long["value"], strict=True)]
    return long


def _targets(g: pd.DataFrame, mean: pd.DataFrame, values: dict[str, Value], held_out: str | None
             ) -> tuple[pd.DataFrame, dict[str, str]]:
    """Per model and target column: the held-out row's value (ref), else the fallback value
    of the same model's run, else the fixed target; NaN where none applies."""
    targets = pd.DataFrame(np.nan, index=mean.index, columns=mean.columns)
    source: dict[str, str] = {}
    for c, v in values.items():
        if v.ideal != "target":
            continue
        if v.ref and held_out is not None and c in mean.columns and not pd.isna(mean.at[held_out, c]):
            targets[c] = float(mean.at[held_out, c])
            source[c] = "ref"
        elif v.fallback is not None:
            fb = g[g["value"] == v.fallback].groupby("model")["x"].mean()
            targets[c] = fb.reindex(mean.index)
            source[c] = v.fallback
        elif v.target is not None:
            targets[c] = float(v.target)
            source[c] = f"{v.target:g}"
        else:
            source[c] = "ref (no held-out row: not ranked)"
    return targets, source


def build_leaderboard(runs: pd.DataFrame, sort_by: str | None = None,
                      declared: Iterable[tuple[str, str]] | None = None,
                      in_progress: str | None = None) -> list[Table]:
    """Cell records (bench.record.cell_record.frame) -> one Table per dataset.

    `declared`: the suite's (dataset, model) pairs. Given, the board is the suite as declared:
    runs of models no longer declared are left out, and a declared model without a finished
    run still has its row (failed, with its first error line; or, with no run recorded at
    all, PENDING while a suite run is in progress and NOT_RUN otherwise: never ranked, never
    counted as failed). `in_progress`: a line saying which suite run a live runner holds
    now (bench.record.lease.live_suite_run), shown above the board. Rows are ordered by tier
    (passing, flagged by a gate, failed, pending / not run) and then by `sort_by` when the
    dataset has that value, else by the headline (see `headline_of`)."""
    pairs = None if declared is None else {(str(d), str(m)) for d, m in declared}
    if pairs is not None and not runs.empty:
        declared_rows = [(d, m) in pairs for d, m in zip(runs["dataset"], runs["model"], strict=True)]
        runs = runs[declared_rows]
    if runs.empty and not pairs:
        return []
    latest = _latest(runs) if not runs.empty else _latest(pd.DataFrame(
        columns=["dataset", "model", "metric", "repeat", "reference", "start_time"]))
    finished = latest[latest["status"] == FINISHED]
    failed = latest[latest["status"] != FINISHED]
    # every run, with values or not (an embedding plot is only an image): HTML shows them all
    cells = finished[["dataset", "model", "metric", "repeat", "run_id", "reference"]]
    long = _long(finished).drop_duplicates(["dataset", "model", "col", "repeat"])
    datasets = sorted({*map(str, latest["dataset"]), *(d for d, _ in pairs or ())})
    tables = []
    for ds in datasets:
        g = long[long["dataset"] == ds]
        runs_ds = latest[latest["dataset"] == ds]
        values: dict[str, Value] = {}
        primaries: list[str] = []
        metric_of: dict[str, str] = {}
        for decl, p, col, val, metric in zip(g["decl"], g["primary"], g["col"], g["value"], g["metric"],
                                             strict=True):
            values.setdefault(col, decl)
            metric_of.setdefault(col, str(metric))
            if val == p and col not in primaries:
                primaries.append(col)
        g = g.assign(w=((g["hi"] - g["lo"]) / (2 * 1.96)) ** 2)
        agg = g.groupby(["model", "col"]).agg(mean=("x", "mean"), std=("x", "std"), n=("x", "count"),
                                              lo=("lo", "mean"), hi=("hi", "mean"), w=("w", "mean"),
                                              bound=("bound", "max"))
        models = list(dict.fromkeys([*map(str, runs_ds["model"]),
                                     *(m for d, m in sorted(pairs or ()) if d == ds)]))
        frames = {c: agg[c].unstack("col").reindex(models) if not agg.empty
                  else pd.DataFrame(index=models, dtype=float)
                  for c in ("mean", "std", "n", "lo", "hi", "w", "bound")}
        ref = {str(m): bool(r) for m, r in zip(runs_ds["model"], runs_ds["reference"], strict=True)}
        held = sorted(set(g.loc[g["held_out"].astype(bool), "model"]))
        held_out = held[0] if held else None
        # reference-role values describe the data: one row per value, not per model
        data_cols = [c for c in frames["mean"].columns if values[c].role == "reference"]
        data = _data_rows(frames, data_cols, ref)
        keep = [str(c) for c in frames["mean"].columns if values[c].role != "reference"]
        order_cols = _column_order(keep, primaries, values)
        frames = {k: f.reindex(columns=order_cols) for k, f in frames.items()}
        targets, source = _targets(g, frames["mean"], values, held_out)
        fails = failed[failed["dataset"] == ds]
        failures = pd.DataFrame({"model": fails["model"].astype(str), "metric": fails["metric"].astype(str),
                                 "repeat": fails["repeat"], "error": fails["error"].astype(str)}
                                ).reset_index(drop=True)
        present = set(runs_ds["model"])
        # declared, no run recorded: still to come while a runner holds the suite, else never
        # started (interrupted, or the store lost it); either way not a failure of the model
        unrun = {m: PENDING if in_progress else NOT_RUN for m in models if m not in present}
        t = Table(ds, frames["mean"], frames["std"], frames["n"], frames["lo"], frames["hi"],
                  {c: values[c] for c in order_cols}, ref, None, primaries, targets, source,
                  held_out, data, within=frames["w"], bound=frames["bound"], failures=failures,
                  metric_of=metric_of, unrun=unrun, in_progress=in_progress)
        t.flags = _model_flags(runs_ds, t)
        t.headline_pair = headline_pair(t)
        t.headline = t.headline_pair[0] if t.headline_pair else None
        key = sort_by if sort_by in order_cols else t.headline or (order_cols[0] if order_cols else None)
        good = t.goodness()[key] if key is not None else pd.Series(0.0, index=t.mean.index)
        order = sorted(t.mean.index, key=lambda m: (t.tier(m), *tie_key(good[m], m)))
        t = _reorder(t, order)
        t.sort_by = key
        t.cells = cells[cells["dataset"] == ds].drop(columns="dataset").sort_values(
            ["model", "metric", "repeat"]).reset_index(drop=True)
        tables.append(t)
    return tables


def tie_key(good: float, model: str) -> tuple[float, str]:
    """The one order of models that tie (same tier and place in the summary, same tier in a
    table): better sort value first (goodness: higher is better; none last), then by name.
    A table's rows follow it, and the summary breaks ties on place by the tables' row order,
    so every format (markdown, CSV, JSON, LaTeX, HTML) lists tied models alike."""
    return (-float(good) if not pd.isna(good) else math.inf, str(model))


def _reorder(t: Table, order: list[str]) -> Table:
    t._memo.clear()
    for name in ("mean", "std", "n", "lo", "hi", "within", "bound", "targets"):
        f = getattr(t, name)
        if not f.empty or len(f.index):
            setattr(t, name, f.reindex(order))
    return t


def _model_flags(runs: pd.DataFrame, t: Table) -> dict[str, list[Flag]]:
    """model -> the flags its finished cells recorded (output checks, a metric's evidence)
    and the gates its values raise in this table (bench.report.gates); each (kind, value) once."""
    recorded: dict[str, list[Flag]] = {}
    ok = runs[runs["status"] == FINISHED]
    for m, fl in zip(ok["model"], ok["flags"], strict=True):
        recorded.setdefault(str(m), []).extend(fl)
    # a value several metrics logged with different results is a column per metric,
    # `metric.value` (_long): the gates count one test per value and result
    names = {c: c[len(m) + 1:] for c, m in t.metric_of.items() if c.startswith(f"{m}.")}
    gates = board_flags(t.mean, t.uncertainty(), t.values, t.held_out, names)
    return {m: fl for m in t.mean.index
            if (fl := merge_flags(recorded.get(m, []), gates.get(m, [])))}


def headline_pair(t: Table) -> list[str]:
    """The values that order the models that pass every gate: the paper's pair where the
    table has it, GAN-train (coverage: what a generated set is worth to a classifier) and
    GAN-test (fidelity: are the images recognisably of their class), read together as
    Shmelkov et al. read them. Otherwise the declared sides of the label-free metrics
    (`Value.headline`): fidelity from precision, density, FID or KID, coverage from recall or
    coverage, the lowest `headline_rank` of each side the table can rank. Chosen from the
    declarations alone, never from which run started first. Runs logged before values
    declared a side fall back to GAN-train, else the alphabetically first ranked primary."""
    cols = t.rank_columns
    sides = []
    for side in ("coverage", "fidelity"):
        cands = [c for c in t.scores if t.values[c].headline == side and t.rankable(c)]
        if cands:
            sides.append(min(cands, key=lambda c: (t.values[c].headline_rank, c)))
    if sides:
        return sides
    if "gan_train_acc" in cols:
        return ["gan_train_acc"]
    return sorted(cols)[:1]


def headline_of(t: Table) -> str | None:
    """The first value of the headline pair (the default sort of the table's rows)."""
    pair = headline_pair(t)
    return pair[0] if pair else None


def _column_order(cols: list[str], primaries: list[str], values: dict[str, Value]) -> list[str]:
    """Scores by aspect (primary first within an aspect), then diagnostics by name."""
    def key(c: str) -> tuple:
        v = values[c]
        aspect = ASPECTS.index(v.aspect) if v.aspect in ASPECTS else len(ASPECTS)
        return (v.role != "score", aspect, c not in primaries, c)
    return sorted(cols, key=key)


def _data_rows(frames: dict[str, pd.DataFrame], cols: list[str], ref: dict[str, bool]) -> pd.DataFrame:
    """Reference-role values, one row each: the median over models (they are the same
    classifier on the same data; a spread means different configs and is reported)."""
    rows = []
    for c in cols:
        m = frames["mean"][c].dropna()
        if m.empty:
            continue
        pick = (m - m.median()).abs().idxmin()
        rows.append({"value": c, "mean": float(m.median()), "std": frames["std"].at[pick, c],
                     "n": frames["n"].at[pick, c], "lo": frames["lo"].at[pick, c],
                     "hi": frames["hi"].at[pick, c], "min": float(m.min()), "max": float(m.max())})
    return pd.DataFrame(rows, columns=["value", "mean", "std", "n", "lo", "hi", "min", "max"])


# ------------------------------------------------------------------ ranks and summary


def dominance(good: np.ndarray, unc: np.ndarray, upper: np.ndarray | None = None,
              lower: np.ndarray | None = None, chunk: int = 64) -> np.ndarray:
    """1 + the number of entries better than each one by more than the combined uncertainty
    sqrt(u_i^2 + u_j^2) (NaN where `good` is NaN). `upper[j]`: j's goodness is only an upper
    bound, so j is never shown better than anyone; `lower[i]`: i's is only a lower bound, so
    nobody is shown better than i.

    Sorted, not all pairs: with the entries in order of goodness, j cannot beat i when
    g_j <= g_i + u_i, and surely beats i when g_j > g_i + sqrt(u_i^2 + U^2) (U: the largest
    uncertainty), so only the band between the two is compared pair by pair, for a chunk of
    neighbouring i at a time; the few entries whose uncertainty is far above the others'
    (which would widen every band) are compared with everyone. Exact: equal to the all-pairs
    count (tests/test_leaderboard.py compares them). 10,000 models: milliseconds per column
    where all pairs took seconds."""
    good = np.asarray(good, dtype=float)
    unc = np.nan_to_num(np.asarray(unc, dtype=float), nan=0.0)
    n = len(good)
    upper = np.zeros(n, bool) if upper is None else np.asarray(upper, bool)
    lower = np.zeros(n, bool) if lower is None else np.asarray(lower, bool)
    out = np.full(n, np.nan)
    ok = ~np.isnan(good)
    g, u, up, lo = good[ok], unc[ok], upper[ok], lower[ok]
    if not len(g):
        return out
    # j can beat someone only when it is no bound from above; "wide" j (uncertainty far above
    # the typical one) are compared with everyone, the rest through sorted bands
    cand = ~up
    wide = cand & (u > 4.0 * max(float(np.median(u)), 1e-12))
    narrow = cand & ~wide
    order = np.argsort(g[narrow], kind="stable")
    gs, us2 = g[narrow][order], (u[narrow][order]) ** 2
    U2 = float(us2.max()) if len(us2) else 0.0
    gw, uw2 = g[wide], u[wide] ** 2
    u2 = u**2
    counts = np.zeros(len(g))
    idx = np.argsort(g, kind="stable")  # i in order of goodness: neighbouring bands overlap
    for s in range(0, len(idx), chunk):
        i = idx[s:s + chunk]
        gi, ui2 = g[i], u2[i]
        lo_edge = gi + np.sqrt(ui2)  # g_j <= this: never better
        hi_edge = gi + np.sqrt(ui2 + U2)  # g_j > this: always better
        a = int(np.searchsorted(gs, lo_edge.min(), side="right"))
        b = int(np.searchsorted(gs, hi_edge.max(), side="right"))
        # beyond b: better than every i of the chunk; between a and b: compared exactly
        sure = len(gs) - np.searchsorted(gs, hi_edge, side="right")
        band_g, band_u2 = gs[a:b], us2[a:b]
        d = band_g[None, :] - gi[:, None]
        m2 = np.maximum(ui2[:, None] + band_u2[None, :], 1e-24)
        in_band = (d > 0) & (d * d > m2) & (band_g[None, :] <= hi_edge[:, None])
        c = sure + in_band.sum(axis=1)
        if len(gw):
            dw = gw[None, :] - gi[:, None]
            c = c + ((dw > 0) & (dw * dw > np.maximum(ui2[:, None] + uw2[None, :], 1e-24))).sum(axis=1)
        counts[i] = np.where(lo[i], 0, c)
    out[ok] = 1 + counts
    return out


def _bound_masks(t: Table, c: str, models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(goodness is an upper bound, goodness is a lower bound) per model for column c."""
    if t.bound.empty or c not in t.bound.columns:
        z = np.zeros(len(models), bool)
        return z, z
    side = t.bound.loc[models, c].to_numpy(dtype=float)
    flip = -1.0 if t.values[c].ideal == "lower" else 1.0  # ≤ x on a lower-is-better value
    side = side * flip  # is a lower bound on goodness
    return side < 0, side > 0


def column_ranks(t: Table) -> pd.DataFrame:
    """Dominance rank per score column among the competing models (1 = best): 1 + the
    number of competitors better than this one by more than the combined uncertainty.
    Reference rows, diagnostics and unrankable targets get NaN."""
    if "ranks" not in t._memo:
        t._memo["ranks"] = _column_ranks(t)
    return t._memo["ranks"].copy()


def _column_ranks(t: Table) -> pd.DataFrame:
    ranks = pd.DataFrame(np.nan, index=t.mean.index, columns=t.mean.columns)
    models = t.ranked
    if not models:
        return ranks
    good, unc = t.goodness().loc[models], t.uncertainty().loc[models]
    for c in t.scores:
        if not t.rankable(c):
            continue
        up, lo = _bound_masks(t, c, models)
        ranks.loc[models, c] = dominance(good[c].to_numpy(), unc[c].to_numpy(), up, lo)
    return ranks


def best_mask(t: Table) -> pd.DataFrame:
    """True where one competing model alone ranks first (separated from the runner-up) and
    passes every gate: a flagged model is never shown as a column's winner."""
    ranks = column_ranks(t)
    passing = np.array([t.tier(m) == 0 for m in ranks.index], dtype=bool)
    firsts = (ranks == 1).sum()
    return (ranks == 1) & pd.DataFrame(np.repeat(passing[:, None], ranks.shape[1], axis=1),
                                       index=ranks.index, columns=ranks.columns) \
        & (firsts == 1) & (ranks.notna().sum() > 1)


def _dominates(g: np.ndarray, u2: np.ndarray, upper: np.ndarray, lower: np.ndarray,
               rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """(D, T) for the models in `rows` against all: D[i, j] when j dominates i (better
    beyond the combined uncertainty on at least one value, worse beyond it on none), T[i, j]
    when they trade off (each better on some value)."""
    d = g[None, :, :] - g[rows, None, :]  # (i, j, value): j's lead over i
    m2 = np.maximum(u2[rows, None, :] + u2[None, :, :], 1e-24)
    sep = d * d > m2  # NaN compares False: not separated
    better = (sep & (d > 0) & ~upper[None, :, :] & ~lower[rows, None, :]).any(axis=2)
    worse = (sep & (d < 0) & ~upper[rows, None, :] & ~lower[None, :, :]).any(axis=2)
    return better & ~worse, better & worse


def pair_dominance(good: np.ndarray, unc: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                   chunk: int = 256, layered_up_to: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Places by dominance over several values at once, and trade-off counts.

    Model j dominates i when j is better than i beyond the combined uncertainty
    sqrt(u_i^2 + u_j^2) on at least one value and worse beyond it on none (a pairwise fact:
    it depends on i and j alone). Places are dominance layers (non-dominated sorting): layer
    1 is every model no other model dominates, layer 2 those only layer-1 models dominate,
    and so on; the place is 1 + the number of models in earlier layers. So a model is always
    placed above every model it dominates, whoever else is on the board; models that do not
    dominate each other may share a layer or not, depending on the others. (A dominance
    cycle, possible with very unequal uncertainties, puts its models in one last layer.)
    Above `layered_up_to` models the place is 1 + the number of dominating models instead
    (memory and time O(n^2) rather than O(n^2 x layers)).

    `good`, `unc`, `upper`, `lower` are (models, values); NaN compares as "not separated"; a
    bound (`upper[j]`: j's goodness is at most this) never makes j better, nor anyone better
    than a lower bound (`lower[i]`). Returns (place, number of models each trades off with:
    better on one value, worse on another)."""
    g = np.asarray(good, dtype=float)
    u2 = np.nan_to_num(np.asarray(unc, dtype=float), nan=0.0) ** 2
    n = len(g)
    trades = np.zeros(n)
    counts = np.zeros(n)
    dom = np.zeros((n, n), bool) if n <= layered_up_to else None
    for s in range(0, n, chunk):
        rows = slice(s, min(n, s + chunk))
        d, t = _dominates(g, u2, upper, lower, rows)
        trades[rows] = t.sum(axis=1)
        counts[rows] = d.sum(axis=1)
        if dom is not None:
            dom[rows] = d
    if dom is None:
        return 1 + counts, trades
    place = np.zeros(n)
    left = np.ones(n, bool)
    placed = 0
    while left.any():
        front = left & ~(dom[:, left].any(axis=1))
        if not front.any():  # a cycle: the rest share the last place
            front = left.copy()
        place[front] = placed + 1
        placed += int(front.sum())
        left &= ~front
    return place, trades


def _pair_arrays(t: Table, models: list[str]) -> tuple[np.ndarray, ...]:
    """(goodness, uncertainty, upper-bound mask, lower-bound mask), models x headline pair."""
    cols = [c for c in t.headline_pair if c in t.mean.columns]
    if not cols:
        z = np.zeros((len(models), 0))
        return z, z, z.astype(bool), z.astype(bool)
    good = t.goodness().loc[models, cols].to_numpy(dtype=float)
    unc = t.uncertainty().loc[models, cols].to_numpy(dtype=float)
    masks = [_bound_masks(t, c, models) for c in cols]
    up = np.stack([m[0] for m in masks], axis=1)
    lo = np.stack([m[1] for m in masks], axis=1)
    return good, unc, up, lo


def places(t: Table) -> pd.Series:
    """Each competing model's place in table t: tier first (passing, flagged, failed), then
    within the tier its dominance layer on the headline pair (`pair_dominance`: better
    beyond the combined uncertainty on one value and worse on none dominates); a model
    without any headline value comes after those with one in its tier. A model better on one
    value of the pair and worse on the other does not dominate it. A model is placed above
    every model it dominates whoever else is on the board; models that do not dominate each
    other may be placed either way next to a third (docs/leaderboard.md)."""
    models = t.ranked
    if not models:
        return pd.Series(dtype=float)
    tiers = np.array([t.tier(m) for m in models])
    good, unc, up, lo = _pair_arrays(t, models)
    missing = np.isnan(good).all(axis=1) if good.shape[1] else np.ones(len(models), bool)
    key = tiers * 2 + missing  # the group a model is placed in, best first
    out = np.empty(len(models))
    for k in np.unique(key):
        inside = key == k
        before = int((key < k).sum())
        if k % 2:  # no headline value: share the group's place
            out[inside] = before + 1
        else:
            out[inside] = before + pair_dominance(good[inside], unc[inside], up[inside],
                                                  lo[inside])[0]
    out[tiers == 3] = np.nan  # pending / not run: shown, never placed
    return pd.Series(out, index=models)


def trade_offs(t: Table, model: str, limit: int = 2) -> str:
    """Why `model` ties rather than ranks against the passing models it trades off with:
    'higher gan_train_acc, further from ref on gan_test_acc than X' (empty when none)."""
    pair = [c for c in t.headline_pair if c in t.mean.columns]
    if len(pair) < 2 or model not in t.ranked or t.tier(model):
        return ""
    # one array operation over the other models, on arrays built once per table (called once
    # per model: pandas scalar lookups here made a 1,000-model board quadratic, ~30 s)
    memo = f"trade_offs:{pair}"
    if memo not in t._memo:
        passing = [o for o in t.ranked if not t.tier(o)]
        t._memo[memo] = (passing, {o: i for i, o in enumerate(passing)},
                         t.goodness().loc[passing, pair].to_numpy(float),
                         t.uncertainty().loc[passing, pair].fillna(0.0).to_numpy(float))
    passing, row, good, unc = t._memo[memo]
    keep = np.arange(len(passing)) != row[model]
    d = good[row[model]] - good[keep]
    u2 = unc[row[model]] ** 2 + unc[keep] ** 2
    with np.errstate(invalid="ignore"):
        clear = ~np.isnan(d) & (d * d > u2)
    ahead, behind = clear & (d > 0), clear & ~(d > 0)
    others = [o for o, k in zip(passing, keep, strict=True) if k]
    parts = []
    for i in np.flatnonzero(ahead.any(axis=1) & behind.any(axis=1))[:limit]:
        a = ", ".join(c for c, k in zip(pair, ahead[i], strict=True) if k)
        b = ", ".join(c for c, k in zip(pair, behind[i], strict=True) if k)
        parts.append(f"better {a} and worse {b} than {others[i]}")
    return "; ".join(parts)


def verdict(tables: list[Table], model: str) -> str:
    """'pass', or in a few words why a model is kept below the passing ones: 'failed: <the
    first error line>' or each gate's kind with the values behind it ('copies
    (authenticity, data_copying_ct); constant'). The reasons in full are under the tables."""
    fails: list[str] = []
    gates: dict[str, list[str]] = {}
    states = [t.state(model) for t in tables if model in t.mean.index]
    if states and all(states):  # no run recorded on any dataset: pending, or not run
        return PENDING if PENDING in states else NOT_RUN
    for t in tables:
        if model not in t.mean.index or t.state(model):
            continue
        if t.failed(model):
            f = t.failures[t.failures["model"] == model]
            fails.extend(first_line(e) for e in f["error"])
        for fl in t.flags.get(model, []):
            if fl.gate:
                vals = gates.setdefault(fl.kind, [])
                if fl.value and fl.value not in vals:
                    vals.append(fl.value)
    if fails:
        text = next(iter(dict.fromkeys(fails)))
        return "failed: " + (text if len(text) <= 120 else text[:117] + "...")
    if not gates:
        why = next((w for t in tables if (w := trade_offs(t, model))), "")
        return f"pass; ties: {why}" if why else "pass"
    return "; ".join(k + (f" ({', '.join(v)})" if v else "") for k, v in gates.items())


def summarize(tables: list[Table]) -> pd.DataFrame:
    """Per competing model: its place (mean over datasets of its place in each table: tier,
    then the headline), its verdict, the aspect view (mean dominance rank per aspect over the
    (dataset, primary) columns of that aspect: descriptive, it does not order the rows), how
    many primaries it was ranked on and its clear wins. Sorted by tier, then place, then
    (models that tie) as the tables list them (`tie_key`)."""
    parts, wins, place_parts, position_parts = [], [], [], []
    tiers: dict[str, int] = {}
    aspect_of: dict[str, str] = {}
    for t in tables:
        if not t.ranked:
            continue
        place_parts.append(places(t).rename(t.dataset))
        # ties on place: the tables' row order (`tie_key`), averaged over datasets
        position_parts.append(pd.Series(range(len(t.ranked)), index=t.ranked, name=t.dataset,
                                        dtype=float))
        for m in t.ranked:  # a model pending on one dataset is ordered by the others
            tier = t.tier(m)
            tiers[m] = tier if m not in tiers else (min(tiers[m], tier) if 3 in (tiers[m], tier)
                                                    else max(tiers[m], tier))
        cols = t.rank_columns
        if not cols:
            continue
        r = column_ranks(t).loc[t.ranked, cols]
        b = best_mask(t).loc[t.ranked, cols]
        for c in cols:
            aspect_of[f"{t.dataset}\x00{c}"] = t.values[c].aspect or "other"
        parts.append(r.add_prefix(f"{t.dataset}\x00"))
        wins.append(b.add_prefix(f"{t.dataset}\x00"))
    aspects = [a for a in (*ASPECTS, "other") if a in aspect_of.values()]
    columns = ["place", "verdict", "headline", *aspects, "ranked", "wins"]
    nothing_ranked = not any(t.headline for t in tables)
    if not place_parts or (nothing_ranked and not any(t.tier(m) for t in tables for m in t.ranked)):
        return pd.DataFrame(columns=columns)  # nothing ranked and nothing to report
    place = pd.concat(place_parts, axis=1)
    out = pd.DataFrame(index=place.index)
    out["place"] = place.mean(axis=1)
    out["verdict"] = [verdict(tables, m) for m in out.index]
    heads = list(dict.fromkeys(" + ".join(t.headline_pair) for t in tables if t.headline_pair))
    out["headline"] = ", ".join(heads)
    if parts:
        ranks = pd.concat(parts, axis=1).reindex(out.index)
        won = pd.concat(wins, axis=1).reindex(out.index).fillna(False).astype(bool)
        for a in aspects:
            out[a] = ranks[[c for c in ranks.columns if aspect_of[c] == a]].mean(axis=1)
        out["ranked"] = ranks.notna().sum(axis=1)
        out["wins"] = (won & ranks.notna()).sum(axis=1)
    else:
        out["ranked"] = 0
        out["wins"] = 0
    out["tier"] = [tiers.get(m, 0) for m in out.index]
    out["position"] = pd.concat(position_parts, axis=1).reindex(out.index).mean(axis=1)
    out.index.name = "model"
    out = out.reset_index().sort_values(["tier", "place", "position", "model"],
                                        na_position="last")
    return out.set_index("model")[columns]


# ------------------------------------------------------------------ ranking agreement

# Pairs whose agreement the paper's argument rests on: TSTR (GAN-train) vs TSTS (does a
# ranking on synthetic test data carry over? the skin-lesion study's use of TSTS), and
# GAN-train vs FID (Shmelkov et al.: they disagree, which is why GAN-train exists).
AGREEMENT_PAIRS = (("gan_train_acc", "tsts_acc"), ("gan_train_acc", "fid"),
                   ("gan_train_acc", "gan_test_acc"), ("fid", "intra_fid"))


EXACT_UP_TO = 8  # models: up to here the p-value enumerates every ordering (8! = 40,320)


def _exact_spearman_p(ra: np.ndarray, rb: np.ndarray, rho: float) -> float:
    """Two-sided permutation p-value of Spearman's rho: the share of all n! orderings of
    `rb` whose |rho| is at least the observed one. With 3 models it is at least 1/3 (two of
    the six orderings give |rho| = 1), where the t approximation said 0."""
    from itertools import permutations

    perms = np.array(list(permutations(rb)), dtype=float)
    a = (ra - ra.mean()) / np.sqrt(((ra - ra.mean()) ** 2).sum())
    pc = perms - perms.mean(axis=1, keepdims=True)
    rhos = pc @ a / np.sqrt((pc**2).sum(axis=1))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


def ranking_agreement(t: Table, min_models: int = 3) -> pd.DataFrame:
    """Spearman's rho between the rankings two values give the competing models, each
    oriented by its ideal (rho = 1: the same order of better to worse), with its two-sided
    p-value: exact (every ordering enumerated) up to `EXACT_UP_TO` models, else from the t
    approximation, as scipy.stats.spearmanr computes both (tested equal).
    Computed here from pandas' ranks and scipy.special's t distribution: importing
    scipy.stats alone takes longer than building a 10,000-model board. Pairs with fewer
    than `min_models` common models are left out."""
    from scipy.special import stdtr

    good = t.goodness().loc[t.ranked]
    rows = []
    for a, b in AGREEMENT_PAIRS:
        if a not in good.columns or b not in good.columns:
            continue
        both = good[[a, b]].dropna()
        n = len(both)
        if n < min_models or both[a].nunique() < 2 or both[b].nunique() < 2:
            continue
        ra, rb = both[a].rank().to_numpy(), both[b].rank().to_numpy()
        rho = float(np.corrcoef(ra, rb)[0, 1])  # Pearson on average ranks
        if n <= EXACT_UP_TO:
            p = _exact_spearman_p(ra, rb, rho)
        elif abs(rho) >= 1.0:
            p = 0.0
        else:
            tstat = rho * math.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))
            p = float(2 * stdtr(n - 2, -abs(tstat)))
        rows.append({"a": a, "b": b, "rho": rho, "p": p, "models": n})
    return pd.DataFrame(rows, columns=["a", "b", "rho", "p", "models"])


def _agreement_text(t: Table) -> str:
    ag = ranking_agreement(t)
    if ag.empty:
        return ""
    items = [f"{md_code(r.a)} vs {md_code(r.b)} ρ = {r.rho:+.2f} (p = {r.p:.2g}, {r.models} models)"
             for r in ag.itertuples()]
    return ("**Ranking agreement** (Spearman's ρ of the two rankings, each oriented best-first; "
            "1 = same order): " + "; ".join(items) + "\n")


# ------------------------------------------------------------------ numbers as text


def decimals_for(u: float) -> int | None:
    """Decimals an uncertainty supports: one significant digit of it (two when it starts
    with 1, so 0.012 keeps 0.012 rather than 0.01). None: no uncertainty known."""
    if u is None or pd.isna(u) or not np.isfinite(u) or u <= 0:
        return None
    e = math.floor(math.log10(u))
    lead = u / 10 ** e
    return int(min(8, max(0, -e + (1 if lead < 2 else 0))))


SIGNIFICANT = 4  # never more significant digits than this, whatever the uncertainty
FLOAT_NOISE = 1e-9  # a value or a half-width below this is float noise around an exact 0


def _scale_cap(m: float) -> int | None:
    """Decimals that give SIGNIFICANT significant digits of m (None for 0)."""
    if m == 0 or not np.isfinite(m):
        return None
    return max(0, SIGNIFICANT - 1 - math.floor(math.log10(abs(m))))


def _fixed(x: float, d: int) -> str:
    return f"{0.0 if round(x, d) == 0 else x:.{d}f}"  # no "-0.00"


def fmt_value(m: float, s: float = np.nan, n: float = 1, lo: float = np.nan, hi: float = np.nan,
              u: float = np.nan, bound: float = np.nan) -> str:
    """One value as text, the same in every format:

    - repeats: `1.13 ± 0.11`, the spread (std over repeats) with two significant digits and
      the mean to match, so a nonzero spread never reads `± 0`;
    - one run with a logged 95% interval: `0.91 [0.89, 0.93]`, the digits its half-width `u`
      supports, never more than four significant digits of the value;
    - a bound: `≤ 179` (bench.record.values.bounded);
    - nothing known: four significant digits (`0.9103`); float noise of an exact 0 reads 0,
      with its interval too when that is float noise (`0 [0, 0]`)."""
    if pd.isna(m):
        return ""
    if not pd.isna(bound) and bound != 0:
        return f"{'≤' if bound < 0 else '≥'} {m:.4g}"
    cap = _scale_cap(m)
    if n > 1 and not pd.isna(s):
        if s > 0:
            ds = max(0, 1 - math.floor(math.log10(s)))  # two significant digits of the spread
            return f"{_fixed(m, ds)} ± {s:.{ds}f}"
        d = decimals_for(u)
        d = min(d, cap) if d is not None and cap is not None else (d if d is not None else 2)
        return f"{_fixed(m, d)} ± 0"
    d = decimals_for(u)
    if d is None:
        return f"{0.0 if abs(m) < FLOAT_NOISE else m:.4g}"
    if abs(m) < FLOAT_NOISE and u < FLOAT_NOISE:  # an exact 0 (copies' intra-FID): no 0.00000000
        return "0 [0, 0]" if not pd.isna(lo) and not pd.isna(hi) else "0"
    if cap is not None:
        d = min(d, cap)
    if not pd.isna(lo) and not pd.isna(hi):
        return f"{_fixed(m, d)} [{_fixed(lo, d)}, {_fixed(hi, d)}]"
    return _fixed(m, d)


def cell_texts(t: Table, unc: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every cell of t (models x columns) with the digits its own uncertainty supports: a value
    prints the same whoever else is on the board, in every format (markdown, LaTeX, HTML,
    bench run and bench leaderboard alike). A cell whose value carries a non-gate flag (a
    possible leak) is marked ⚠; the reason is under the table. Read from numpy arrays once:
    a board of 10,000 models does no per-cell pandas lookup. Computed once per table (with
    the table's own uncertainty) and shared by every format that renders it."""
    if unc is None or unc is t._memo.get("uncertainty"):
        if "texts" not in t._memo:
            t._memo["texts"] = _cell_texts(t, t.uncertainty())
        return t._memo["texts"].copy()
    return _cell_texts(t, unc)


def _cell_texts(t: Table, unc: pd.DataFrame) -> pd.DataFrame:
    cols = list(t.mean.columns)
    arr = {k: f.reindex(index=t.mean.index, columns=cols).to_numpy(dtype=float)
           if (not f.empty or len(f.index)) else np.full(t.mean.shape, np.nan)
           for k, f in (("m", t.mean), ("s", t.std), ("n", t.n), ("lo", t.lo), ("hi", t.hi),
                        ("u", unc), ("b", t.bound))}
    warned = {(m, f.value) for m, fl in t.flags.items() for f in fl if not f.gate and f.value}
    rows = []
    for i, m in enumerate(t.mean.index):
        row = []
        for j, c in enumerate(cols):
            text = fmt_value(arr["m"][i, j], arr["s"][i, j], arr["n"][i, j], arr["lo"][i, j],
                             arr["hi"][i, j], arr["u"][i, j], arr["b"][i, j])
            row.append(text + " ⚠" if text and (m, c) in warned else text)
        rows.append(row)
    return pd.DataFrame(rows, index=t.mean.index, columns=cols, dtype=object)


def _data_text(r: pd.Series) -> str:
    u = (r["hi"] - r["lo"]) / 2 if not pd.isna(r["lo"]) else np.nan
    text = fmt_value(r["mean"], r["std"], r["n"], r["lo"], r["hi"], u)
    if r["max"] - r["min"] > 1e-9:
        text += f" (varies by model: {r['min']:.4g} to {r['max']:.4g})"
    return text


def arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def _num(x: float) -> float | None:
    return None if pd.isna(x) else float(np.round(x, 6)) + 0.0  # + 0.0: no -0.0


def md_escape(text: object) -> str:
    """A model, dataset or value name as markdown text (a table cell, a heading): no tag, link,
    emphasis or extra cell from it (bench.core.safe_names.md_text)."""
    return md_text(text)


def legend(t: Table) -> str:
    """What the marks in a table's header mean, and where targets come from."""
    parts = ["↑ higher is better, ↓ lower is better, →x: closest to x is best"]
    if any(v == "ref" for v in t.target_source.values()):
        parts.append(f"→ref: the held-out real row ({md_code(t.held_out)}) in this suite")
    if t.repeats > 1:
        parts.append(f"mean ± std over {t.repeats} repeats (trainable generators retrained per repeat)")
    else:
        parts.append("[95% interval] where the metric logs one")
    parts.append("bold: best, separated from the runner-up beyond the combined 95% uncertainty")
    return "; ".join(parts) + "."


def render(tables: list[Table], fmt: str = "markdown") -> str:
    """Text formats of the tables and their summary (HTML: bench.report.html.render_html).
    Names come from the store, where anything may have been written: every control
    character but the board's own line breaks is shown as an escape (`\\x1b`), so a name
    never recolours or rewrites the terminal that prints the board (JSON escapes them itself)."""
    renderers = {"markdown": _markdown, "csv": _csv, "json": _json, "latex": _latex}
    if fmt not in renderers:
        hint = " (html: bench.report.html.render_html)" if fmt == "html" else ""
        raise ValueError(f"unknown format {fmt}; use one of {TEXT_FORMATS}{hint}")
    return printable(renderers[fmt](tables), keep="\n")


def _value_meta(t: Table, c: str) -> dict:
    v = t.values[c]
    return {"role": v.role, "ideal": v.ideal, "aspect": v.aspect,
            "target": t.target_source.get(c), "primary": c in t.rank_columns}


def _csv(tables: list[Table]) -> str:
    """Long CSV, one row per (dataset, model, value); `rank`/`best` blank where not ranked;
    data reference values as model `(data)`."""
    rows = []
    for t in tables:
        cols = list(t.mean.columns)
        ranks, best, unc = column_ranks(t), best_mask(t), t.uncertainty()
        targets = t.targets.reindex(index=t.mean.index, columns=cols) if not t.targets.empty else \
            pd.DataFrame(np.nan, index=t.mean.index, columns=cols)
        arr = {k: f.reindex(index=t.mean.index, columns=cols).to_numpy()
               for k, f in (("mean", t.mean), ("std", t.std), ("n", t.n), ("ci_low", t.lo),
                            ("ci_high", t.hi), ("uncertainty95", unc), ("target_value", targets),
                            ("rank", ranks), ("best", best))}
        meta = [_value_meta(t, c) for c in cols]
        for i, m in enumerate(t.mean.index):
            ref = t.reference.get(m, False)
            state = t.state(m) or ""
            for j, c in enumerate(cols):
                n, rank = arr["n"][i, j], arr["rank"][i, j]
                rows.append({"dataset": t.dataset, "model": m, "reference": ref, "value": c,
                             **meta[j], "mean": arr["mean"][i, j], "std": arr["std"][i, j],
                             "n": 0 if pd.isna(n) else int(n), "ci_low": arr["ci_low"][i, j],
                             "ci_high": arr["ci_high"][i, j],
                             "uncertainty95": arr["uncertainty95"][i, j],
                             "target_value": arr["target_value"][i, j], "rank": rank,
                             "best": bool(arr["best"][i, j]) if not pd.isna(rank) else "",
                             "state": state})
        for _, r in t.data.iterrows():
            rows.append({"dataset": t.dataset, "model": "(data)", "reference": True, "value": r["value"],
                         "role": "reference", "ideal": "", "aspect": None, "target": None,
                         "primary": False, "mean": r["mean"], "std": r["std"],
                         "n": 0 if pd.isna(r["n"]) else int(r["n"]), "ci_low": r["lo"],
                         "ci_high": r["hi"], "uncertainty95": np.nan, "target_value": np.nan,
                         "rank": np.nan, "best": "", "state": ""})
    return pd.DataFrame(rows).to_csv(index=False)


def _json_cells(t: Table) -> list[dict]:
    """The rows of a table as JSON objects: every cell's text and numbers (rounded to 6
    decimals, NaN as null), read from numpy arrays once."""
    ranks, unc = column_ranks(t), t.uncertainty()
    texts = cell_texts(t, unc).to_numpy()
    cols = list(t.mean.columns)

    def numbers(f: pd.DataFrame) -> list[list[float | None]]:
        a = np.round(f.reindex(index=t.mean.index, columns=cols).to_numpy(dtype=float), 6) + 0.0
        return [[None if x != x else x for x in row] for row in a.tolist()]  # x != x: NaN

    num = {k: numbers(f) for k, f in (("mean", t.mean), ("std", t.std), ("n", t.n),
                                      ("ci_low", t.lo), ("ci_high", t.hi),
                                      ("uncertainty95", unc), ("rank", ranks))}
    bound = numbers(t.bound) if not t.bound.empty else None
    has_bound = [c in t.bound.columns for c in cols]
    rows = []
    for i, m in enumerate(t.mean.index):
        row = {"model": m, "reference": bool(t.reference.get(m, False)), "tier": t.tier(m),
               "state": t.state(m), "flags": [f.to_json() for f in t.flags.get(m, [])]}
        for j, c in enumerate(cols):
            row[c] = {"text": texts[i, j],
                      "bound": bound[i][j] if bound is not None and has_bound[j] else None,
                      **{k: v[i][j] for k, v in num.items()}}
        rows.append(row)
    return rows


def _json(tables: list[Table]) -> str:
    """One JSON object on one line (the C encoder: a pretty-printed 10,000-model board takes
    seconds to write); `python -m json.tool` shows it indented."""
    summary = summarize(tables)
    out_tables = [{
        "dataset": t.dataset, "sort_by": t.sort_by, "primaries": t.rank_columns,
        "held_out": t.held_out, "headline": t.headline,
        "values": {c: _value_meta(t, c) for c in t.mean.columns},
        "failures": t.failures.to_dict("records"),
        "agreement": ranking_agreement(t).to_dict("records"),
        "data": [{"value": r["value"], "mean": _num(r["mean"]), "ci_low": _num(r["lo"]),
                  "ci_high": _num(r["hi"])} for _, r in t.data.iterrows()],
        "rows": _json_cells(t)} for t in tables]
    return json.dumps({
        "summary": [{"model": m, **{k: (r[k] if k in ("verdict", "headline") else
                                        int(r[k]) if k in ("ranked", "wins") else _num(r[k]))
                                    for k in summary.columns}} for m, r in summary.iterrows()],
        "in_progress": progress_note(tables), "tables": out_tables}) + "\n"


def _rank(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.2f}"


def summary_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as display strings (shared by markdown and HTML)."""
    body = pd.DataFrame(index=summary.index)
    body["place ↓"] = [_rank(x) for x in summary["place"]]
    body["verdict"] = [v if v == "pass" or v in UNRUN_STATES else f"✗ {v}" for v in summary["verdict"]]
    aspects = [a for a in summary.columns if a not in ("place", "verdict", "headline", "ranked", "wins")]
    for a in aspects:
        body[f"{a} ↓"] = [_rank(x) for x in summary[a]]
    body["clear wins ↑"] = [f"{int(w)}/{int(r)}" for w, r in zip(summary["wins"], summary["ranked"], strict=True)]
    return body


def summary_note(tables: list[Table]) -> str:
    heads = list(dict.fromkeys(" + ".join(md_code(h) for h in t.headline_pair)
                               for t in tables if t.headline_pair))
    head = ", ".join(heads) or "none (no ranked value)"
    return ("Order: models that pass every gate first, then those flagged by a gate (copying the "
            "training data, ignoring their labels, broken output: the verdict says which and why), "
            "then failed ones, then those without a run (pending while a suite run is in "
            "progress, else not run: never ranked). Within each, `place` is ordered by the headline pair "
            f"({head}; mean over datasets): 1 + the number of models in a better group or "
            "better beyond the combined 95% uncertainty on one of the pair and worse on neither "
            "(a model better on one and worse on the other ties with it). The aspect columns are mean dominance "
            "ranks per aspect: a view of strengths, not the order. Wins: primaries where the "
            "model alone is best. Reference rows are not ranked.")


def progress_note(tables: list[Table]) -> str | None:
    """The line above a board read while a runner holds the suite (None when none does)."""
    note = next((t.in_progress for t in tables if t.in_progress), None)
    if note is None:
        return None
    pending = sorted({m for t in tables for m, s in t.unrun.items() if s == PENDING})
    return (f"{note}: this board may still change; {len(pending)} model(s) without a run yet "
            "are pending (shown, not ranked, not failed).")


def _markdown(tables: list[Table]) -> str:
    if not tables:
        return "(no finished runs)\n"
    out = []
    if (running := progress_note(tables)) is not None:
        out.append(f"**In progress.** {md_escape(running)}\n")
    summary = summarize(tables)
    if not summary.empty:
        body = summary_frame(summary)
        body.index = [md_escape(m) for m in body.index]
        body.index.name = "model"
        body["verdict"] = [md_escape(v) for v in body["verdict"]]  # it names models and values
        out.append(f"### Summary over {len(tables)} dataset(s)\n\n{summary_note(tables)}\n\n"
                   + body.to_markdown(disable_numparse=True) + "\n")
    out.extend(_markdown_table(t) for t in tables)
    return "\n".join(out)


def model_label(t: Table, m: str) -> str:
    """A model's name, marked ✗ when a gate flags it or it failed (reasons under the table)."""
    return f"{m} ✗" if t.tier(m) in (1, 2) else m


def _rows(t: Table, cols: list[str], bold: bool, texts: pd.DataFrame | None = None,
          best: pd.DataFrame | None = None) -> tuple[list[str], list[list[str]]]:
    """Labels and cell texts of the rows shown for `cols` (`texts`/`best`: the whole table's
    `cell_texts` and `best_mask`, when the caller renders several column groups)."""
    best = (best_mask(t) if best is None else best)[cols]
    texts = (cell_texts(t, t.uncertainty()) if texts is None else texts)[cols]
    best_of = dict(zip(best.index, best.to_numpy(dtype=bool), strict=True))
    text_of = dict(zip(texts.index, texts.to_numpy(), strict=True))
    failed_cols = _failed_columns(t)

    def cells(m: str, ranked: bool) -> list[str]:
        if (state := t.state(m)) is not None:
            return [state] * len(cols)
        vals = [v or ("failed" if c in failed_cols.get(m, ()) else "")
                for v, c in zip(text_of[m], cols, strict=True)]
        return [f"**{v}**" if bold and ranked and v and v != "failed" and b else v
                for v, b in zip(vals, best_of[m], strict=True)]

    has = t.mean[cols].notna().any(axis=1)
    shown = [m for m in t.ranked if has[m] or t.failed(m) or t.state(m)]
    labels = [md_escape(model_label(t, m)) for m in shown]
    rows = [cells(m, True) for m in shown]
    refs = [m for m in t.references if has[m] or t.failed(m) or t.state(m)]
    if refs:
        labels.append(f"*{REFERENCE_LABEL}*")
        rows.append([""] * len(cols))
        for m in refs:
            tag = "held-out reference" if m == t.held_out else "reference"
            labels.append(f"{md_escape(model_label(t, m))} ({tag})")
            rows.append(cells(m, False))
    return labels, rows


def _failed_columns(t: Table) -> dict[str, set[str]]:
    """model -> the columns its failed cells would have filled (as other models' runs of the
    same metric show; a failed metric nobody finished has no column and is listed below)."""
    out: dict[str, set[str]] = {}
    if t.failures.empty:
        return out
    by_metric: dict[str, set[str]] = {}
    for c, metric in t.metric_of.items():
        by_metric.setdefault(metric, set()).add(c)
    for m, metric in zip(t.failures["model"], t.failures["metric"], strict=True):
        cols = set(t.mean.columns) if metric == "(all)" else by_metric.get(metric, set())
        out.setdefault(m, set()).update(cols)
    return out


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("Traceback"):  # a crash: its last line says what
        return lines[-1][:200]
    return lines[0][:200] if lines else "(no error recorded)"


def notes(t: Table, text: Any = str, code: Any = md_code) -> list[str]:
    """The reasons behind the marks: each model's flags (✗: a gate, ⚠: a warning on a
    value) and failed cells with their first error line. `text`: how free text (reasons,
    error lines, which quote names) is written (markdown: `md_text`); `code`: how a name is
    set apart (markdown: a code span; HTML, which escapes the line itself: `str`)."""
    out = []
    for m in t.mean.index:
        for f in t.flags.get(m, []):
            mark = "✗" if f.gate else "⚠"
            out.append(f"{mark} {code(m)} {text(f.kind)}" + (f" ({code(f.value)})" if f.value else "")
                       + f": {text(f.reason)}")
    if not t.failures.empty:  # one line per model and error: a broken model fails every cell alike
        f = t.failures.assign(line=[first_line(e) for e in t.failures["error"]])
        for (m, line), g in f.groupby(["model", "line"], sort=False):
            metrics = ", ".join(code(x) for x in dict.fromkeys(map(str, g["metric"])))
            out.append(f"✗ {code(m)} failed ({metrics}): {text(line)}")
    for state, why in ((PENDING, "no run recorded yet; the suite run in progress has not "
                        "reached it"), (NOT_RUN, "no run recorded: the suite run ended or was "
                        "interrupted before its cells started")):
        models = [m for m, s in t.unrun.items() if s == state]
        if models:
            out.append(f"○ {state} ({why}; not ranked, not failed): "
                       + ", ".join(code(m) for m in models))
    return out


WIDE = 8  # score columns beyond which a table is split by aspect


def _score_groups(t: Table) -> list[tuple[str, list[str], bool]]:
    """The score columns as one table, or one per aspect when there are more than WIDE."""
    if len(t.scores) <= WIDE:
        return [("", t.scores, True)]
    groups: dict[str, list[str]] = {}
    for c in t.scores:
        groups.setdefault(t.values[c].aspect or "other", []).append(c)
    return [(f"Scores: {a}", cols, True) for a, cols in groups.items()]


def _diagnostic_groups(t: Table) -> list[tuple[str, list[str], bool]]:
    """The diagnostics as one table, or, when wider than WIDE, one per metric (the paper's
    layout: augmentation by fraction, balancing by arm, the curve by size)."""
    title = "Diagnostics (shown, not ranked)"
    if len(t.diagnostics) <= WIDE:
        return [(title, t.diagnostics, False)]
    groups: dict[str, list[str]] = {}
    for c in t.diagnostics:
        groups.setdefault(t.metric_of.get(c, "other"), []).append(c)
    return [(f"{title}: {m}", cols, False) for m, cols in groups.items()]


def _markdown_table(t: Table) -> str:
    """Scores (bold: a separated winner), then diagnostics (never bold), each with the
    competing models first and the reference rows under a divider; then the data's own
    reference values, once."""
    parts = [f"### {md_escape(t.dataset)} (passing models first, then by {md_escape(t.sort_by)})\n"]
    texts, best = cell_texts(t, t.uncertainty()), best_mask(t)
    for title, cols, bold in (*_score_groups(t), *_diagnostic_groups(t)):
        cols = [c for c in cols if t.mean.loc[t.mean.index, c].notna().any()]
        if not cols and bold and any(t.failed(m) for m in t.mean.index):
            cols = []  # nothing finished: the failed rows are listed below
        if not cols:
            continue
        labels, rows = _rows(t, cols, bold, texts, best)
        body = pd.DataFrame(rows, columns=[md_escape(t.header(c)) for c in cols],
                            index=pd.Index(labels, name="model"))
        parts.append((f"**{title}**\n\n" if title else "") + body.to_markdown(disable_numparse=True) + "\n")
    if not t.data.empty:
        parts.append("**Data reference (a property of the data, the same for every model)**: "
                     + "; ".join(f"{md_code(r['value'])} {_data_text(r)}" for _, r in t.data.iterrows()) + "\n")
    flagged = notes(t, md_text)
    if flagged:
        parts.append("**Flags and failures** (✗ keeps a model below every model that passes; "
                     "⚠ marks a value to read with care)\n\n" + "\n".join(f"- {n}" for n in flagged) + "\n")
    agreement = _agreement_text(t)
    if agreement:
        parts.append(agreement)
    unranked = [c for c in t.scores if not t.rankable(c)]
    if unranked:
        parts.append("Not ranked (target needs a held-out real row, e.g. "
                     "`{source: reference, kind: real, split: val}`): "
                     + ", ".join(md_code(c) for c in unranked) + "\n")
    parts.append(legend(t) + "\n")
    return "\n".join(parts)


# ------------------------------------------------------------------ LaTeX

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """Every character LaTeX treats specially, as text: model and value names are user input
    (`my_model`, `fid@50%`) and one unescaped `_` or `%` breaks a whole paper's build. A
    control character is written as its escape first (`\\x1b`), whose backslash is then text."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in printable(text))


def _latex_symbols(text: str) -> str:
    return (latex_escape(text).replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")
            .replace("→", r"$\rightarrow$").replace("±", r"$\pm$"))


def _latex_tabular(header: list[str], rows: list[list[str]], ref_rows: list[list[str]],
                   caption: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); reference rows after a \\midrule."""
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(header) + r" \\"]
    if rows:
        lines.append(r"\midrule")
        lines += [" & ".join(r) + r" \\" for r in rows]
    if ref_rows:
        lines += [r"\midrule", f"\\multicolumn{{{len(header)}}}{{l}}{{\\textit{{{REFERENCE_LABEL}}}}} \\\\"]
        lines += [" & ".join(r) + r" \\" for r in ref_rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _latex(tables: list[Table]) -> str:
    if not tables:
        return "% no finished runs\n"
    out = ["% generated by `bench leaderboard --format latex`; needs \\usepackage{booktabs}\n"]
    summary = summarize(tables)
    if not summary.empty:
        body = summary_frame(summary)
        rows = [[latex_escape(m)] + [v or "--" for v in r] for m, r in zip(body.index, body.values.tolist(), strict=True)]
        out.append(_latex_tabular(["Model"] + [_latex_symbols(c) for c in body.columns], rows, [],
                                  latex_escape(f"Summary over {len(tables)} dataset(s): dominance ranks "
                                               "of each metric's primary score; reference rows not ranked.")))
    for t in tables:
        if not t.scores:
            continue
        best, cols = best_mask(t), t.scores
        texts = cell_texts(t, t.uncertainty())

        def row(m: str, ranked: bool, t: Table = t, best: pd.DataFrame = best,
                texts: pd.DataFrame = texts, cols: list[str] = cols) -> list[str]:
            out_row = [latex_escape(m + {1: " (flagged)", 2: " (failed)",
                                         3: f" ({t.state(m)})"}.get(t.tier(m), ""))]
            for c in cols:
                text = texts.at[m, c]
                if not text:
                    out_row.append("--")
                    continue
                body = text.replace("±", r"\pm")
                out_row.append(f"$\\mathbf{{{body}}}$" if ranked and best.at[m, c] else f"${body}$")
            return out_row

        header = ["Model"] + [_latex_symbols(t.header(c)) for c in cols]
        out.append(_latex_tabular(header, [row(m, True) for m in t.ranked],
                                  [row(m, False) for m in t.references],
                                  f"{latex_escape(t.dataset)}: {_latex_symbols(legend(t))}"))
    return "\n".join(out)


# ------------------------------------------------------------------ one model over time


def history_table(points: list[tuple[str, str, pd.DataFrame]], model: str) -> pd.DataFrame:
    """One model's values over suite runs: one row per (date, suite run id, its cell runs),
    in the order given (oldest first), one column per `dataset/value mark`, means over repeats.

    Each suite run is built into a leaderboard on its own, so its columns are named exactly as
    that night's leaderboard named them.
    """
    rows = []
    for date, run_id, runs in points:
        row: dict[str, object] = {"date": date, "run_id": run_id}
        for t in build_leaderboard(runs[runs["model"] == model]) if not runs.empty else []:
            if model not in t.mean.index:
                continue
            for c in t.mean.columns:
                row[f"{t.dataset}/{c} {t.values[c].symbol}"] = t.mean.at[model, c]
        rows.append(row)
    return pd.DataFrame(rows)


def render_history(table: pd.DataFrame, model: str, fmt: str = "markdown") -> str:
    """The history in a text format; values with four significant digits."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return json.dumps({"model": model, "runs": [
            {k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in table.to_dict("records")]}, indent=1)
    shown = table.copy()
    for c in shown.columns[2:]:
        shown[c] = [fmt_value(v) for v in shown[c]]
    if fmt == "latex":
        header = [_latex_symbols(c) for c in shown.columns]
        rows = [[latex_escape(v) for v in r] for r in shown.astype(str).values.tolist()]
        return _latex_tabular(header, rows, [], f"{latex_escape(model)} over suite runs")
    if fmt != "markdown":
        raise ValueError(f"the history view is text: use one of {TEXT_FORMATS}, not {fmt}")
    shown.columns = [md_escape(c) for c in shown.columns]
    return (f"### {md_escape(model)} over {len(table)} suite run(s), oldest first\n\n"
            + shown.to_markdown(index=False, disable_numparse=True) + "\n")
