"""MLflow cell runs -> leaderboard tables.

One table per dataset (models as rows, mean +/- std over repeats, arrows for the better
direction), reference rows set apart, and a summary across datasets: each model's mean rank
over the datasets' primary values and its win rate, the share of (dataset, value) columns
where it is best (reference rows are neither ranked nor counted: they calibrate, they do not
compete). Rendered as markdown, CSV, JSON or LaTeX here; the HTML page is bench/html_report.py.
This module reads a DataFrame (Tracker.cell_runs) and never talks to MLflow itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FORMATS = ("markdown", "csv", "json", "latex", "html")
TEXT_FORMATS = ("markdown", "csv", "json", "latex")  # render(); html needs artifacts: html_report
REFERENCE_LABEL = "reference (not ranked)"


@dataclass
class Table:
    dataset: str
    mean: pd.DataFrame  # models x values
    std: pd.DataFrame
    n: pd.DataFrame
    higher_is_better: dict[str, bool]
    reference: dict[str, bool]
    sort_by: str | None
    primaries: list[str] = field(default_factory=list)  # the metrics' primary values, in order
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
    def rank_columns(self) -> list[str]:
        """The values the summary ranks on: the primaries, else the sort column."""
        return list(self.primaries) or ([self.sort_by] if self.sort_by else [])


# ------------------------------------------------------------------ building


def _latest(runs: pd.DataFrame) -> pd.DataFrame:
    """The latest run of each cell (a re-run replaces, it does not add a repeat), oldest first."""
    if "run_id" not in runs.columns:  # synthetic frames in tests, older callers
        runs = runs.assign(run_id="")
    latest = runs.sort_values("start_time", ascending=False).drop_duplicates(
        ["dataset", "model", "metric", "repeat"])
    return latest.sort_values("start_time", kind="stable")


def _long(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell run, value), in run order: the first metric run names the first
    primary, so the default sort is the suite's first metric, as `--sort`'s help says."""
    metric_cols = [c for c in runs.columns if c.startswith("m:")]
    long = runs.melt(id_vars=["dataset", "model", "metric", "repeat", "reference", "directions",
                              "primary", "start_time"],
                     value_vars=metric_cols, var_name="value", value_name="x").dropna(subset=["x"])
    long = long.sort_values("start_time", kind="stable")
    long["value"] = long["value"].str[2:]
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


def build_leaderboard(runs: pd.DataFrame, sort_by: str | None = None) -> list[Table]:
    """Tracker.cell_runs rows -> one Table per dataset, sorted by `sort_by` when the dataset
    has that value, else by the primary value of the metric that ran first."""
    if runs.empty:
        return []
    latest = _latest(runs)
    # every run, with values or not (an embedding plot is only an image): HTML shows them all
    cells = latest[["dataset", "model", "metric", "repeat", "run_id", "reference"]]
    long = _long(latest).drop_duplicates(["dataset", "model", "col", "repeat"])
    tables = []
    for ds, g in long.groupby("dataset", sort=True):
        agg = g.groupby(["model", "col"])["x"].agg(["mean", "std", "count"])
        mean, std, n = (agg[c].unstack("col") for c in ("mean", "std", "count"))
        directions: dict[str, bool] = {}
        primaries: list[str] = []
        for d, p, col, val in zip(g["directions"], g["primary"], g["col"], g["value"], strict=True):
            directions.setdefault(col, bool(d.get(val, True)))
            if val == p and col not in primaries:
                primaries.append(col)
        cols = primaries + sorted(c for c in mean.columns if c not in primaries)
        mean, std, n = mean[cols], std[cols], n[cols]
        key = sort_by if sort_by in mean.columns else (primaries[0] if primaries else cols[0])
        order = mean[key].sort_values(ascending=not directions.get(key, True), na_position="last").index
        ref = g.groupby("model")["reference"].first().to_dict()
        ds_cells = cells[cells["dataset"] == ds].drop(columns="dataset").sort_values(
            ["model", "metric", "repeat"]).reset_index(drop=True)
        tables.append(Table(str(ds), mean.loc[order], std.loc[order], n.loc[order], directions, ref,
                            key, primaries, ds_cells))
    return tables


# ------------------------------------------------------------------ ranks and summary


def column_ranks(t: Table, method: str = "average") -> pd.DataFrame:
    """Rank 1 = best, per value column, among the competing (non-reference) models only.

    Reference rows get NaN: a held-out real split would otherwise take first place in every
    column and push every real model down one rank.
    """
    ranked = t.mean.loc[t.ranked]
    ranks = pd.DataFrame({c: ranked[c].rank(ascending=not t.higher_is_better.get(c, True),
                                            method=method) for c in t.mean.columns},
                         index=ranked.index, columns=t.mean.columns)
    return ranks.reindex(t.mean.index)


def best_mask(t: Table) -> pd.DataFrame:
    """True where a competing model is best in its column (ties: all of them)."""
    return column_ranks(t, method="min") == 1


def summarize(tables: list[Table]) -> pd.DataFrame:
    """Per competing model: mean rank over the primary values of every dataset, and win rate.

    mean_rank averages the model's rank (ties averaged) over the (dataset, primary value)
    columns it has a value in (`ranked` of them); win_rate is wins / columns over every
    (dataset, value) column it has a value in, as HELM summarises many scenarios in one
    number. Sorted best first: mean rank, then win rate, then name.
    """
    rank_parts, best_parts = [], []
    for t in tables:
        ranks = column_ranks(t).loc[t.ranked]
        rank_parts.append(ranks[t.rank_columns].add_prefix(f"{t.dataset}\x00"))
        best = best_mask(t).loc[t.ranked].where(ranks.notna())  # NaN: no value, not a loss
        best_parts.append(best.add_prefix(f"{t.dataset}\x00"))
    rank_parts = [p for p in rank_parts if not p.empty]
    best_parts = [p for p in best_parts if not p.empty]
    if not best_parts:
        return pd.DataFrame(columns=["mean_rank", "ranked", "win_rate", "wins", "columns"])
    ranks = pd.concat(rank_parts, axis=1) if rank_parts else pd.DataFrame()
    best = pd.concat(best_parts, axis=1).astype(float)
    ranks = ranks.reindex(best.index)
    out = pd.DataFrame({"mean_rank": ranks.mean(axis=1), "ranked": ranks.notna().sum(axis=1),
                        "wins": best.sum(axis=1).astype(int), "columns": best.notna().sum(axis=1)})
    out["win_rate"] = out["wins"] / out["columns"].where(out["columns"] > 0)
    out.index.name = "model"
    out = out.reset_index().sort_values(["mean_rank", "win_rate", "model"],
                                        ascending=[True, False, True], na_position="last")
    return out.set_index("model")[["mean_rank", "ranked", "win_rate", "wins", "columns"]]


# ------------------------------------------------------------------ rendering


def _fmt(m: float, s: float, n: float) -> str:
    if pd.isna(m):
        return ""
    return f"{m:.4f} ± {s:.4f}" if n > 1 and not pd.isna(s) else f"{m:.4f}"


def arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def _num(x: float) -> float | None:
    return None if pd.isna(x) else float(np.round(x, 6))


def render(tables: list[Table], fmt: str = "markdown") -> str:
    """Text formats of the tables and their summary (HTML: bench.html_report.render_html)."""
    renderers = {"markdown": _markdown, "csv": _csv, "json": _json, "latex": _latex}
    if fmt not in renderers:
        hint = " (html: bench.html_report.render_html)" if fmt == "html" else ""
        raise ValueError(f"unknown format {fmt}; use one of {TEXT_FORMATS}{hint}")
    return renderers[fmt](tables)


def _csv(tables: list[Table]) -> str:
    """Long CSV, one row per (dataset, model, value); `rank`/`best` are blank on reference rows."""
    rows = []
    for t in tables:
        ranks, best = column_ranks(t), best_mask(t)
        for m in t.mean.index:
            for c in t.mean.columns:
                n = t.n.at[m, c]
                rows.append({"dataset": t.dataset, "model": m, "reference": t.reference.get(m, False),
                             "value": c, "mean": t.mean.at[m, c], "std": t.std.at[m, c],
                             "n": 0 if pd.isna(n) else int(n),
                             "higher_is_better": t.higher_is_better.get(c, True),
                             "primary": c in t.rank_columns, "rank": ranks.at[m, c],
                             "best": bool(best.at[m, c]) if not pd.isna(ranks.at[m, c]) else ""})
    return pd.DataFrame(rows).to_csv(index=False)


def _json(tables: list[Table]) -> str:
    summary = summarize(tables)
    return json.dumps({
        "summary": [{"model": m, "mean_rank": _num(r["mean_rank"]), "ranked": int(r["ranked"]),
                     "win_rate": _num(r["win_rate"]), "wins": int(r["wins"]),
                     "columns": int(r["columns"])} for m, r in summary.iterrows()],
        "tables": [{"dataset": t.dataset, "sort_by": t.sort_by, "primaries": t.rank_columns,
                    "higher_is_better": t.higher_is_better,
                    "rows": [{"model": m, "reference": bool(t.reference.get(m, False)),
                              **{c: {"mean": _num(t.mean.at[m, c]), "std": _num(t.std.at[m, c]),
                                     "n": _num(t.n.at[m, c])} for c in t.mean.columns}}
                             for m in t.mean.index]} for t in tables]}, indent=1)


def _rank(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.2f}"


def _win_rate(r: pd.Series) -> str:
    if pd.isna(r["win_rate"]):
        return ""
    return f"{r['win_rate']:.0%} ({int(r['wins'])}/{int(r['columns'])})"


def _markdown(tables: list[Table]) -> str:
    if not tables:
        return "(no finished runs)\n"
    out = []
    summary = summarize(tables)
    if not summary.empty:
        body = pd.DataFrame({"mean rank ↓": [_rank(x) for x in summary["mean_rank"]],
                             "win rate ↑": [_win_rate(r) for _, r in summary.iterrows()]},
                            index=summary.index)
        out.append(f"### Summary over {len(tables)} dataset(s)\n\nMean rank over each dataset's "
                   "primary values; win rate: share of (dataset, value) columns where the model "
                   "is best. Reference rows are not ranked.\n\n" + body.to_markdown(disable_numparse=True) + "\n")
    out.extend(_markdown_table(t) for t in tables)
    return "\n".join(out)


def _markdown_table(t: Table) -> str:
    """Competing models first (best value of each column in bold), then a `reference` divider
    row and the reference rows, so that a floor or ceiling is never read as a contender."""
    best = best_mask(t)
    header = {c: f"{c} {arrow(t.higher_is_better.get(c, True))}" for c in t.mean.columns}

    def cells(m: str) -> list[str]:
        vals = [_fmt(t.mean.at[m, c], t.std.at[m, c], t.n.at[m, c]) for c in t.mean.columns]
        return [f"**{v}**" if v and best.at[m, c] else v for v, c in zip(vals, t.mean.columns, strict=True)]

    rows = [(m, cells(m)) for m in t.ranked]
    if t.references:
        rows.append((f"*{REFERENCE_LABEL}*", [""] * len(t.mean.columns)))
        rows.extend((f"{m} (reference)", cells(m)) for m in t.references)
    body = pd.DataFrame([r for _, r in rows], columns=[header[c] for c in t.mean.columns],
                        index=pd.Index([label for label, _ in rows], name="model"))
    return f"### {t.dataset} (sorted by {t.sort_by})\n\n{body.to_markdown(disable_numparse=True)}\n"


# ------------------------------------------------------------------ LaTeX

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
                  "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """Every character LaTeX treats specially, as text: model and value names are user input
    (`my_model`, `fid@50%`) and one unescaped `_` or `%` breaks a whole paper's build."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def _latex_value(m: float, s: float, n: float, bold: bool) -> str:
    if pd.isna(m):
        return "--"
    body = f"{m:.4f} \\pm {s:.4f}" if n > 1 and not pd.isna(s) else f"{m:.4f}"
    return f"$\\mathbf{{{body}}}$" if bold else f"${body}$"


def _latex_tabular(header: list[str], rows: list[list[str]], ref_rows: list[list[str]],
                   caption: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); reference rows after a \\midrule."""
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule"]
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
        rows = [[latex_escape(m), _rank(r["mean_rank"]) or "--",
                 "--" if pd.isna(r["win_rate"]) else f"{r['win_rate'] * 100:.0f}\\%"]
                for m, r in summary.iterrows()]
        out.append(_latex_tabular([r"Model", r"Mean rank $\downarrow$", r"Win rate $\uparrow$"], rows, [],
                                  f"Summary over {len(tables)} dataset(s): mean rank over primary "
                                  "values, win rate over all values; reference rows not ranked."))
    for t in tables:
        best = best_mask(t)
        header = ["Model"] + [f"{latex_escape(c)} $\\{'up' if t.higher_is_better.get(c, True) else 'down'}arrow$"
                              for c in t.mean.columns]

        def row(m: str, t: Table = t, best: pd.DataFrame = best) -> list[str]:
            return [latex_escape(m)] + [_latex_value(t.mean.at[m, c], t.std.at[m, c], t.n.at[m, c],
                                                     bool(best.at[m, c])) for c in t.mean.columns]

        out.append(_latex_tabular(header, [row(m) for m in t.ranked], [row(m) for m in t.references],
                                  f"{latex_escape(t.dataset)} (mean $\\pm$ std over repeats; "
                                  "best in bold)"))
    return "\n".join(out)


# ------------------------------------------------------------------ one model over time


def history_table(points: list[tuple[str, str, pd.DataFrame]], model: str) -> pd.DataFrame:
    """One model's values over suite runs: one row per (date, suite run id, its cell runs),
    in the order given (oldest first), one column per `dataset/value arrow`, means over repeats.

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
                row[f"{t.dataset}/{c} {arrow(t.higher_is_better.get(c, True))}"] = t.mean.at[model, c]
        rows.append(row)
    return pd.DataFrame(rows)


def render_history(table: pd.DataFrame, model: str, fmt: str = "markdown") -> str:
    """The history in a text format; values keep 4 decimals, as the leaderboard shows them."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return json.dumps({"model": model, "runs": [
            {k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in table.to_dict("records")]}, indent=1)
    shown = table.copy()
    for c in shown.columns[2:]:
        shown[c] = [_fmt(v, np.nan, 1) for v in shown[c]]
    if fmt == "latex":
        header = [latex_escape(c).replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")
                  for c in shown.columns]
        rows = [[latex_escape(v) for v in r] for r in shown.astype(str).values.tolist()]
        return _latex_tabular(header, rows, [], f"{latex_escape(model)} over suite runs")
    if fmt != "markdown":
        raise ValueError(f"the history view is text: use one of {TEXT_FORMATS}, not {fmt}")
    return f"### {model} over {len(table)} suite run(s), oldest first\n\n" + shown.to_markdown(index=False, disable_numparse=True) + "\n"
