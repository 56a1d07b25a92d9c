"""MLflow cell runs -> leaderboard tables that say what each number means and how sure it is.

Every value carries its declaration (bench.values: role, ideal, aspect; logged with each
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
- the summary ranks one score per metric (its primary), grouped by aspect (quality,
  diversity, conditioning, memorisation, utility): mean rank per aspect and overall (the
  mean of the aspect means, so a suite with four utility metrics does not drown quality),
  and clear wins (primaries where the model alone is best).

Reference rows (calibration models such as real data or noise) are shown apart and never
ranked. Rendered as markdown, CSV, JSON or LaTeX here; HTML is bench/html_report.py. This
module reads a DataFrame (Tracker.cell_runs) and never talks to MLflow itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.values import ASPECTS, HI, LO, Value, is_interval

FORMATS = ("markdown", "csv", "json", "latex", "html")
TEXT_FORMATS = ("markdown", "csv", "json", "latex")  # render(); html needs artifacts: html_report
REFERENCE_LABEL = "reference (not ranked)"
SUMMARY_NOTE = ("Ranks are dominance ranks over the primary score of each metric: 1 + the number "
                "of models separated from this one (beyond the combined 95% uncertainty) and better; "
                "models within each other's uncertainty share a rank. Mean rank per aspect, overall = "
                "mean of the aspect means; wins: primaries where the model alone ranks first. "
                "Reference rows are not ranked.")


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

    @property
    def ranked(self) -> list[str]:
        """Models that compete, in table order."""
        return [m for m in self.mean.index if not self.reference.get(m, False)]

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
        """95% half-width per cell: t interval of the mean over repeats, else half the
        logged interval, else NaN (unknown: treated as exact)."""
        from scipy.stats import t as student

        n = self.n.astype(float)
        tq = n.map(lambda k: student.ppf(0.975, k - 1) if k > 1 else np.nan)
        rep = tq * self.std / np.sqrt(n)
        logged = (self.hi - self.lo) / 2 / np.sqrt(n)
        return rep.where(n > 1, logged)

    def goodness(self) -> pd.DataFrame:
        """Higher = better, per cell: x, -x, or -|x - target|."""
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
    """The latest run of each cell (a re-run replaces, it does not add a repeat), oldest first."""
    if "run_id" not in runs.columns:  # synthetic frames in tests, older callers
        runs = runs.assign(run_id="")
    for col, default in (("held_out", False), ("values", None), ("primary", "")):
        if col not in runs.columns:
            runs = runs.assign(**{col: [default] * len(runs)})
    runs = runs.assign(values=[v if isinstance(v, dict) else {} for v in runs["values"]])
    latest = runs.sort_values("start_time", ascending=False).drop_duplicates(
        ["dataset", "model", "metric", "repeat"])
    return latest.sort_values("start_time", kind="stable")


def _long(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell run, value), in run order, with the value's declaration; interval
    bounds become `lo`/`hi` columns of their value's row. The first metric run names the
    first primary, so the default sort is the suite's first metric."""
    metric_cols = [c for c in runs.columns if c.startswith("m:")]
    long = runs.melt(id_vars=["dataset", "model", "metric", "repeat", "reference", "held_out",
                              "values", "primary", "start_time"],
                     value_vars=metric_cols, var_name="value", value_name="x").dropna(subset=["x"])
    long = long.sort_values("start_time", kind="stable")
    long["value"] = long["value"].str[2:]
    keys = ["dataset", "model", "metric", "repeat"]
    bounds = long[long["value"].map(is_interval)]
    long = long[~long["value"].map(is_interval)].copy()
    for suffix, col in ((LO, "lo"), (HI, "hi")):
        b = bounds[bounds["value"].str.endswith(suffix)].assign(
            value=lambda d, s=suffix: d["value"].str[: -len(s)])[keys + ["value", "x"]]
        long = long.merge(b.rename(columns={"x": col}), on=keys + ["value"], how="left")
    long["decl"] = [vals.get(v) or Value("diagnostic") for vals, v in zip(long["values"], long["value"], strict=True)]
    # the same value from several metrics (real_val_acc from gan_train and gan_test): keep one
    # column when they agree, otherwise name each by its metric
    spread = long.groupby(["dataset", "model", "value", "repeat"])["x"].agg(lambda s: s.max() - s.min())
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


def build_leaderboard(runs: pd.DataFrame, sort_by: str | None = None) -> list[Table]:
    """Tracker.cell_runs rows -> one Table per dataset, sorted by `sort_by` when the dataset
    has that value, else by the primary of the metric that ran first."""
    if runs.empty:
        return []
    latest = _latest(runs)
    # every run, with values or not (an embedding plot is only an image): HTML shows them all
    cells = latest[["dataset", "model", "metric", "repeat", "run_id", "reference"]]
    long = _long(latest).drop_duplicates(["dataset", "model", "col", "repeat"])
    tables = []
    for ds, g in long.groupby("dataset", sort=True):
        values: dict[str, Value] = {}
        primaries: list[str] = []
        for decl, p, col, val in zip(g["decl"], g["primary"], g["col"], g["value"], strict=True):
            values.setdefault(col, decl)
            if val == p and col not in primaries:
                primaries.append(col)
        agg = g.groupby(["model", "col"]).agg(mean=("x", "mean"), std=("x", "std"), n=("x", "count"),
                                              lo=("lo", "mean"), hi=("hi", "mean"))
        frames = {c: agg[c].unstack("col") for c in ("mean", "std", "n", "lo", "hi")}
        ref = g.groupby("model")["reference"].first().to_dict()
        held = sorted(set(g.loc[g["held_out"].astype(bool), "model"]))
        held_out = held[0] if held else None
        # reference-role values describe the data: one row per value, not per model
        data_cols = [c for c in frames["mean"].columns if values[c].role == "reference"]
        data = _data_rows(frames, data_cols, ref)
        keep = [c for c in frames["mean"].columns if values[c].role != "reference"]
        order_cols = _column_order(keep, primaries, values)
        frames = {k: f.reindex(columns=order_cols) for k, f in frames.items()}
        # a model with only reference values (e.g. one that ran gan_train only) keeps its row
        targets, source = _targets(g, frames["mean"], values, held_out)
        t = Table(str(ds), frames["mean"], frames["std"], frames["n"], frames["lo"], frames["hi"],
                  {c: values[c] for c in order_cols}, ref, None, primaries, targets, source,
                  held_out, data)
        key = sort_by if sort_by in order_cols else next(iter(t.rank_columns), order_cols[0] if order_cols else None)
        if key is not None:
            good = t.goodness()[key]
            order = good.sort_values(ascending=False, na_position="last").index
            mean, std, n, lo, hi = (f.loc[order] for f in (t.mean, t.std, t.n, t.lo, t.hi))
            t = Table(t.dataset, mean, std, n, lo, hi, t.values,
                      ref, key, primaries, t.targets.loc[order], source, held_out, data)
        ds_cells = cells[cells["dataset"] == ds].drop(columns="dataset").sort_values(
            ["model", "metric", "repeat"]).reset_index(drop=True)
        t.cells = ds_cells
        tables.append(t)
    return tables


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


def column_ranks(t: Table) -> pd.DataFrame:
    """Dominance rank per score column among the competing models (1 = best): 1 + the
    number of competitors better than this one by more than the combined uncertainty.
    Reference rows, diagnostics and unrankable targets get NaN."""
    ranks = pd.DataFrame(np.nan, index=t.mean.index, columns=t.mean.columns)
    if not t.ranked:
        return ranks
    good, unc = t.goodness().loc[t.ranked], t.uncertainty().loc[t.ranked].fillna(0.0)
    for c in t.scores:
        if not t.rankable(c):
            continue
        g, u = good[c].dropna(), unc[c]
        for m in g.index:
            margin = np.sqrt(u[m] ** 2 + u[g.index] ** 2)
            better = (g - g[m]) > np.maximum(margin, 1e-12)
            ranks.at[m, c] = 1 + int(better.sum())
    return ranks


def best_mask(t: Table) -> pd.DataFrame:
    """True where one competing model alone ranks first: separated from the runner-up."""
    ranks = column_ranks(t)
    firsts = (ranks == 1).sum()
    return (ranks == 1) & (firsts == 1) & (ranks.notna().sum() > 1)


def summarize(tables: list[Table]) -> pd.DataFrame:
    """Per competing model: mean rank per aspect over the (dataset, primary) columns of that
    aspect, overall (mean of its aspect means), how many primaries it was ranked on, and its
    clear wins. Sorted best first."""
    parts, wins = [], []
    aspect_of: dict[str, str] = {}
    for t in tables:
        cols = t.rank_columns
        if not cols or not t.ranked:
            continue
        r = column_ranks(t).loc[t.ranked, cols]
        b = best_mask(t).loc[t.ranked, cols]
        for c in cols:
            aspect_of[f"{t.dataset}\x00{c}"] = t.values[c].aspect or "other"
        parts.append(r.add_prefix(f"{t.dataset}\x00"))
        wins.append(b.add_prefix(f"{t.dataset}\x00"))
    aspects = [a for a in (*ASPECTS, "other") if a in aspect_of.values()]
    columns = [*aspects, "overall", "ranked", "wins"]
    if not parts:
        return pd.DataFrame(columns=columns)
    ranks = pd.concat(parts, axis=1)
    won = pd.concat(wins, axis=1).reindex(ranks.index).fillna(False).astype(bool)
    out = pd.DataFrame(index=ranks.index)
    for a in aspects:
        out[a] = ranks[[c for c in ranks.columns if aspect_of[c] == a]].mean(axis=1)
    out["overall"] = out[aspects].mean(axis=1)
    out["ranked"] = ranks.notna().sum(axis=1)
    out["wins"] = (won & ranks.notna()).sum(axis=1)
    out.index.name = "model"
    out = out.reset_index().sort_values(["overall", "wins", "model"], ascending=[True, False, True],
                                        na_position="last")
    return out.set_index("model")[columns]


# ------------------------------------------------------------------ ranking agreement

# Pairs whose agreement the paper's argument rests on: TSTR (GAN-train) vs TSTS (does a
# ranking on synthetic test data carry over? the skin-lesion study's use of TSTS), and
# GAN-train vs FID (Shmelkov et al.: they disagree, which is why GAN-train exists).
AGREEMENT_PAIRS = (("gan_train_acc", "tsts_acc"), ("gan_train_acc", "fid"),
                   ("gan_train_acc", "gan_test_acc"), ("fid", "intra_fid"))


def ranking_agreement(t: Table, min_models: int = 3) -> pd.DataFrame:
    """Spearman's rho between the rankings two values give the competing models, each
    oriented by its ideal (rho = 1: the same order of better to worse), with its p-value
    (scipy.stats.spearmanr). Pairs with fewer than `min_models` common models are left out."""
    from scipy.stats import spearmanr

    good = t.goodness().loc[t.ranked]
    rows = []
    for a, b in AGREEMENT_PAIRS:
        if a not in good.columns or b not in good.columns:
            continue
        both = good[[a, b]].dropna()
        if len(both) < min_models or both[a].nunique() < 2 or both[b].nunique() < 2:
            continue
        rho, p = spearmanr(both[a], both[b])
        rows.append({"a": a, "b": b, "rho": float(rho), "p": float(p), "models": len(both)})
    return pd.DataFrame(rows, columns=["a", "b", "rho", "p", "models"])


def _agreement_text(t: Table) -> str:
    ag = ranking_agreement(t)
    if ag.empty:
        return ""
    items = [f"`{r.a}` vs `{r.b}` ρ = {r.rho:+.2f} (p = {r.p:.2g}, {r.models} models)"
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


def fmt_value(m: float, s: float = np.nan, n: float = 1, lo: float = np.nan, hi: float = np.nan,
              u: float = np.nan) -> str:
    """`0.91 ± 0.02` (std over repeats), `0.91 [0.89, 0.93]` (a logged 95% interval) or
    `0.9103` (nothing known: four significant digits)."""
    if pd.isna(m):
        return ""
    d = decimals_for(u)
    if d is None:
        return f"{0.0 if abs(m) < 1e-9 else m:.4g}"  # float noise of an exact 0 reads as 0
    m, s, lo, hi = (x if pd.isna(x) or round(x, d) != 0 else 0.0 for x in (m, s, lo, hi))  # no "-0.00"
    if n > 1 and not pd.isna(s):
        return f"{m:.{d}f} ± {s:.{d}f}"
    if not pd.isna(lo) and not pd.isna(hi):
        return f"{m:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"
    return f"{m:.{d}f}"


def _cell_text(t: Table, unc: pd.DataFrame, m: str, c: str) -> str:
    """A cell with the decimals its column's typical (median) uncertainty supports, so a
    column reads with one precision."""
    u = unc[c].dropna()
    return fmt_value(t.mean.at[m, c], t.std.at[m, c], t.n.at[m, c], t.lo.at[m, c], t.hi.at[m, c],
                     float(u.median()) if len(u) else np.nan)


def _data_text(r: pd.Series) -> str:
    u = (r["hi"] - r["lo"]) / 2 if not pd.isna(r["lo"]) else np.nan
    text = fmt_value(r["mean"], r["std"], r["n"], r["lo"], r["hi"], u)
    if r["max"] - r["min"] > 1e-9:
        text += f" (varies by model: {r['min']:.4g} to {r['max']:.4g})"
    return text


def arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def _num(x: float) -> float | None:
    return None if pd.isna(x) else float(np.round(x, 6))


def md_escape(text: str) -> str:
    """A model or value name as markdown table text: `|` would split the cell."""
    return str(text).replace("|", "\\|")


def legend(t: Table) -> str:
    """What the marks in a table's header mean, and where targets come from."""
    parts = ["↑ higher is better, ↓ lower is better, →x: closest to x is best"]
    if any(v == "ref" for v in t.target_source.values()):
        parts.append(f"→ref: the held-out real row (`{t.held_out}`) in this suite")
    if t.repeats > 1:
        parts.append(f"mean ± std over {t.repeats} repeats (trainable generators retrained per repeat)")
    else:
        parts.append("[95% interval] where the metric logs one")
    parts.append("bold: best, separated from the runner-up beyond the combined 95% uncertainty")
    return "; ".join(parts) + "."


def render(tables: list[Table], fmt: str = "markdown") -> str:
    """Text formats of the tables and their summary (HTML: bench.html_report.render_html)."""
    renderers = {"markdown": _markdown, "csv": _csv, "json": _json, "latex": _latex}
    if fmt not in renderers:
        hint = " (html: bench.html_report.render_html)" if fmt == "html" else ""
        raise ValueError(f"unknown format {fmt}; use one of {TEXT_FORMATS}{hint}")
    return renderers[fmt](tables)


def _value_meta(t: Table, c: str) -> dict:
    v = t.values[c]
    return {"role": v.role, "ideal": v.ideal, "aspect": v.aspect,
            "target": t.target_source.get(c), "primary": c in t.rank_columns}


def _csv(tables: list[Table]) -> str:
    """Long CSV, one row per (dataset, model, value); `rank`/`best` blank where not ranked;
    data reference values as model `(data)`."""
    rows = []
    for t in tables:
        ranks, best, unc = column_ranks(t), best_mask(t), t.uncertainty()
        for m in t.mean.index:
            for c in t.mean.columns:
                n = t.n.at[m, c]
                rows.append({"dataset": t.dataset, "model": m, "reference": t.reference.get(m, False),
                             "value": c, **_value_meta(t, c), "mean": t.mean.at[m, c],
                             "std": t.std.at[m, c], "n": 0 if pd.isna(n) else int(n),
                             "ci_low": t.lo.at[m, c], "ci_high": t.hi.at[m, c],
                             "uncertainty95": unc.at[m, c],
                             "target_value": t.targets.at[m, c] if c in t.targets else np.nan,
                             "rank": ranks.at[m, c],
                             "best": bool(best.at[m, c]) if not pd.isna(ranks.at[m, c]) else ""})
        for _, r in t.data.iterrows():
            rows.append({"dataset": t.dataset, "model": "(data)", "reference": True, "value": r["value"],
                         "role": "reference", "ideal": "", "aspect": None, "target": None,
                         "primary": False, "mean": r["mean"], "std": r["std"],
                         "n": 0 if pd.isna(r["n"]) else int(r["n"]), "ci_low": r["lo"],
                         "ci_high": r["hi"], "uncertainty95": np.nan, "target_value": np.nan,
                         "rank": np.nan, "best": ""})
    return pd.DataFrame(rows).to_csv(index=False)


def _json(tables: list[Table]) -> str:
    summary = summarize(tables)
    out_tables = []
    for t in tables:
        ranks, unc = column_ranks(t), t.uncertainty()
        out_tables.append({
            "dataset": t.dataset, "sort_by": t.sort_by, "primaries": t.rank_columns,
            "held_out": t.held_out,
            "values": {c: _value_meta(t, c) for c in t.mean.columns},
            "agreement": ranking_agreement(t).to_dict("records"),
            "data": [{"value": r["value"], "mean": _num(r["mean"]), "ci_low": _num(r["lo"]),
                      "ci_high": _num(r["hi"])} for _, r in t.data.iterrows()],
            "rows": [{"model": m, "reference": bool(t.reference.get(m, False)),
                      **{c: {"mean": _num(t.mean.at[m, c]), "std": _num(t.std.at[m, c]),
                             "n": _num(t.n.at[m, c]), "ci_low": _num(t.lo.at[m, c]),
                             "ci_high": _num(t.hi.at[m, c]), "uncertainty95": _num(unc.at[m, c]),
                             "rank": _num(ranks.at[m, c])} for c in t.mean.columns}}
                     for m in t.mean.index]})
    return json.dumps({
        "summary": [{"model": m, **{k: (_num(r[k]) if k not in ("ranked", "wins") else int(r[k]))
                                    for k in summary.columns}} for m, r in summary.iterrows()],
        "tables": out_tables}, indent=1)


def _rank(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.2f}"


def summary_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as display strings (shared by markdown and HTML)."""
    cols = {a: f"{a} ↓" for a in summary.columns if a not in ("overall", "ranked", "wins")}
    body = pd.DataFrame({label: [_rank(x) for x in summary[a]] for a, label in cols.items()},
                        index=summary.index)
    body["overall ↓"] = [_rank(x) for x in summary["overall"]]
    body["clear wins ↑"] = [f"{int(w)}/{int(r)}" for w, r in zip(summary["wins"], summary["ranked"], strict=True)]
    return body


def _markdown(tables: list[Table]) -> str:
    if not tables:
        return "(no finished runs)\n"
    out = []
    summary = summarize(tables)
    if not summary.empty:
        body = summary_frame(summary)
        body.index = [md_escape(m) for m in body.index]
        body.index.name = "model"
        out.append(f"### Summary over {len(tables)} dataset(s)\n\n{SUMMARY_NOTE}\n\n"
                   + body.to_markdown(disable_numparse=True) + "\n")
    out.extend(_markdown_table(t) for t in tables)
    return "\n".join(out)


def _rows(t: Table, cols: list[str], bold: bool) -> tuple[list[str], list[list[str]]]:
    best, unc = best_mask(t), t.uncertainty()

    def cells(m: str, ranked: bool) -> list[str]:
        vals = [_cell_text(t, unc, m, c) for c in cols]
        return [f"**{v}**" if bold and ranked and v and best.at[m, c] else v
                for v, c in zip(vals, cols, strict=True)]

    has = t.mean[cols].notna().any(axis=1)
    labels = [md_escape(m) for m in t.ranked if has[m]]
    rows = [cells(m, True) for m in t.ranked if has[m]]
    refs = [m for m in t.references if has[m]]
    if refs:
        labels.append(f"*{REFERENCE_LABEL}*")
        rows.append([""] * len(cols))
        for m in refs:
            tag = "held-out reference" if m == t.held_out else "reference"
            labels.append(f"{md_escape(m)} ({tag})")
            rows.append(cells(m, False))
    return labels, rows


WIDE = 8  # score columns beyond which a table is split by aspect


def _score_groups(t: Table) -> list[tuple[str, list[str], bool]]:
    """The score columns as one table, or one per aspect when there are more than WIDE."""
    if len(t.scores) <= WIDE:
        return [("", t.scores, True)]
    groups: dict[str, list[str]] = {}
    for c in t.scores:
        groups.setdefault(t.values[c].aspect or "other", []).append(c)
    return [(f"Scores: {a}", cols, True) for a, cols in groups.items()]


def _markdown_table(t: Table) -> str:
    """Scores (bold: a separated winner), then diagnostics (never bold), each with the
    competing models first and the reference rows under a divider; then the data's own
    reference values, once."""
    parts = [f"### {md_escape(t.dataset)} (sorted by {t.sort_by})\n"]
    for title, cols, bold in (*_score_groups(t), ("Diagnostics (shown, not ranked)", t.diagnostics, False)):
        cols = [c for c in cols if t.mean.loc[t.mean.index, c].notna().any()]
        if not cols:
            continue
        labels, rows = _rows(t, cols, bold)
        body = pd.DataFrame(rows, columns=[md_escape(t.header(c)) for c in cols],
                            index=pd.Index(labels, name="model"))
        parts.append((f"**{title}**\n\n" if title else "") + body.to_markdown(disable_numparse=True) + "\n")
    if not t.data.empty:
        parts.append("**Data reference (a property of the data, the same for every model)**: "
                     + "; ".join(f"`{r['value']}` {_data_text(r)}" for _, r in t.data.iterrows()) + "\n")
    agreement = _agreement_text(t)
    if agreement:
        parts.append(agreement)
    unranked = [c for c in t.scores if not t.rankable(c)]
    if unranked:
        parts.append("Not ranked (target needs a held-out real row, e.g. "
                     "`{source: reference, kind: real, split: val}`): "
                     + ", ".join(f"`{c}`" for c in unranked) + "\n")
    parts.append(legend(t) + "\n")
    return "\n".join(parts)


# ------------------------------------------------------------------ LaTeX

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """Every character LaTeX treats specially, as text: model and value names are user input
    (`my_model`, `fid@50%`) and one unescaped `_` or `%` breaks a whole paper's build."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


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
        best, unc, cols = best_mask(t), t.uncertainty(), t.scores

        def row(m: str, ranked: bool, t: Table = t, best: pd.DataFrame = best,
                unc: pd.DataFrame = unc, cols: list[str] = cols) -> list[str]:
            out_row = [latex_escape(m)]
            for c in cols:
                text = _cell_text(t, unc, m, c)
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
    return (f"### {md_escape(model)} over {len(table)} suite run(s), oldest first\n\n"
            + shown.to_markdown(index=False, disable_numparse=True) + "\n")
