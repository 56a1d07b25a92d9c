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
ranked. This module builds the tables (bench.report.table.Table) from a DataFrame
(Tracker.cell_runs) and never talks to MLflow itself; ranking is bench.report.ranking,
numbers as text bench.report.formatting, the typed board every text renderer reads
bench.report.board, the renderers bench.report.render (markdown, CSV, JSON, LaTeX) and
bench.report.html. `render(tables, fmt)` is build_board + a renderer. The names of those
modules are re-exported here for the callers that import them from this one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bench.core.safe_names import printable
from bench.record.cell_record import FINISHED
from bench.record.flags import Flag
from bench.record.flags import merge as merge_flags
from bench.record.values import ASPECTS, BOUND, HI, LO, Value, is_interval
from bench.report.formats import FORMATS, TEXT_FORMATS  # noqa: F401 - re-exported
from bench.report.formatting import (  # noqa: F401 - re-exported for existing importers
    FLOAT_NOISE,
    SIGNIFICANT,
    WIDE,
    _data_text,
    _diagnostic_groups,
    _failed_columns,
    _num,
    _rank,
    _score_groups,
    arrow,
    cell_texts,
    decimals_for,
    fmt_value,
    legend,
    md_escape,
    model_label,
    note_items,
    notes,
    progress_note,
    summary_frame,
    summary_note,
)
from bench.report.gates import board_flags
from bench.report.ranking import (  # noqa: F401 - re-exported for existing importers
    AGREEMENT_PAIRS,
    EXACT_UP_TO,
    best_mask,
    column_ranks,
    dominance,
    headline_of,
    headline_pair,
    pair_dominance,
    places,
    ranking_agreement,
    summarize,
    tie_key,
    trade_offs,
    verdict,
)
from bench.report.render.latex import latex_escape, latex_symbols, latex_tabular
from bench.report.table import (  # noqa: F401 - re-exported for existing importers
    NOT_RUN,
    PENDING,
    REFERENCE_LABEL,
    UNRUN_STATES,
    Table,
    first_line,
)

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


# ------------------------------------------------------------------ text formats


def render(tables: list[Table], fmt: str = "markdown") -> str:
    """Text formats of the tables and their summary (HTML: bench.report.html.render_html):
    the typed board (bench.report.board_builder.build_board) through one of bench.report.render's
    renderers. Names come from the store, where anything may have been written: every
    control character but the board's own line breaks is shown as an escape (`\\x1b`), so a
    name never recolours or rewrites the terminal that prints the board (JSON escapes them
    itself)."""
    from bench.report.board_builder import build_board
    from bench.report.render import NEEDS, RENDERERS

    if fmt not in RENDERERS:
        hint = " (html: bench.report.html.render_html)" if fmt == "html" else ""
        raise ValueError(f"unknown format {fmt}; use one of {TEXT_FORMATS}{hint}")
    return printable(RENDERERS[fmt](build_board(tables, NEEDS[fmt])), keep="\n")


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
        header = [latex_symbols(c) for c in shown.columns]
        rows = [[latex_escape(v) for v in r] for r in shown.astype(str).values.tolist()]
        return latex_tabular(header, rows, [], f"{latex_escape(model)} over suite runs")
    if fmt != "markdown":
        raise ValueError(f"the history view is text: use one of {TEXT_FORMATS}, not {fmt}")
    shown.columns = [md_escape(c) for c in shown.columns]
    return (f"### {md_escape(model)} over {len(table)} suite run(s), oldest first\n\n"
            + shown.to_markdown(index=False, disable_numparse=True) + "\n")
