"""MLflow cell runs -> leaderboard tables: one per dataset, models as rows, mean +/- std over
repeats, arrows for the better direction, reference rows marked."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

FORMATS = ("markdown", "csv", "json")


@dataclass
class Table:
    dataset: str
    mean: pd.DataFrame  # models x values
    std: pd.DataFrame
    n: pd.DataFrame
    higher_is_better: dict[str, bool]
    reference: dict[str, bool]
    sort_by: str | None


def _long(runs: pd.DataFrame) -> pd.DataFrame:
    metric_cols = [c for c in runs.columns if c.startswith("m:")]
    runs = runs.sort_values("start_time", ascending=False).drop_duplicates(
        ["dataset", "model", "metric", "repeat"])  # latest run of each cell wins
    long = runs.melt(id_vars=["dataset", "model", "metric", "repeat", "reference", "directions", "primary"],
                     value_vars=metric_cols, var_name="value", value_name="x").dropna(subset=["x"])
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
    return long.drop_duplicates(["dataset", "model", "col", "repeat"])


def build_leaderboard(runs: pd.DataFrame, sort_by: str | None = None) -> list[Table]:
    if runs.empty:
        return []
    long = _long(runs)
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
        tables.append(Table(str(ds), mean.loc[order], std.loc[order], n.loc[order], directions, ref, key))
    return tables


def _fmt(m: float, s: float, n: float) -> str:
    if pd.isna(m):
        return ""
    return f"{m:.4f} ± {s:.4f}" if n > 1 and not pd.isna(s) else f"{m:.4f}"


def render(tables: list[Table], fmt: str = "markdown") -> str:
    if fmt == "csv":
        rows = [{"dataset": t.dataset, "model": m, "reference": t.reference.get(m, False), "value": c,
                 "mean": t.mean.at[m, c], "std": t.std.at[m, c], "n": int(t.n.at[m, c]) if not pd.isna(t.n.at[m, c]) else 0,
                 "higher_is_better": t.higher_is_better.get(c, True)}
                for t in tables for m in t.mean.index for c in t.mean.columns]
        return pd.DataFrame(rows).to_csv(index=False)
    if fmt == "json":
        return json.dumps([{"dataset": t.dataset, "sort_by": t.sort_by,
                            "higher_is_better": t.higher_is_better,
                            "rows": [{"model": m, "reference": bool(t.reference.get(m, False)),
                                      **{c: {"mean": _num(t.mean.at[m, c]), "std": _num(t.std.at[m, c]),
                                             "n": _num(t.n.at[m, c])} for c in t.mean.columns}}
                                     for m in t.mean.index]} for t in tables], indent=1)
    if fmt != "markdown":
        raise ValueError(f"unknown format {fmt}; use one of {FORMATS}")
    out = []
    for t in tables:
        header = {c: f"{c} {'↑' if t.higher_is_better.get(c, True) else '↓'}" for c in t.mean.columns}
        body = pd.DataFrame(
            {header[c]: [_fmt(t.mean.at[m, c], t.std.at[m, c], t.n.at[m, c]) for m in t.mean.index]
             for c in t.mean.columns},
            index=[f"{m} (reference)" if t.reference.get(m) else m for m in t.mean.index])
        body.index.name = "model"
        out.append(f"### {t.dataset} (sorted by {t.sort_by})\n\n{body.to_markdown()}\n")
    return "\n".join(out) if out else "(no finished runs)\n"


def _num(x: float) -> float | None:
    return None if pd.isna(x) else float(np.round(x, 6))
