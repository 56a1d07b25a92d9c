"""The board's "against published values" section: each `published:` number of the suite
(bench.config.published) beside our value for the same dataset, model and value.

Our value is the board's (mean over repeats, the same digits as the board); the published
number is said to agree when it lies inside our 95% interval (a single run's logged
interval, else mean ± the board's uncertainty), else ours is "higher" or "lower". A
published number is never ranked and never changes the board's order: it says whether the
run reproduces the paper's setting, which matters before any model comparison is read.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from bench.config.published import PublishedBlock
from bench.report.leaderboard import Table, cell_texts, fmt_value, md_escape

COLUMNS = ["source", "dataset", "model", "value", "ours", "published", "difference", "reading"]


def _ours(t: Table, model: str, value: str) -> tuple[float, float, float, float, str]:
    """(mean, half-width, lo, hi, text) of a board cell, or of a reference-role value (the
    data section: one value for every model)."""
    if model in t.mean.index and value in t.mean.columns:
        u = float(t.uncertainty().loc[model, value])
        n = float(t.n.loc[model, value]) if value in t.n.columns else math.nan
        lo = float(t.lo.loc[model, value]) if value in t.lo.columns and n == 1 else math.nan
        hi = float(t.hi.loc[model, value]) if value in t.hi.columns and n == 1 else math.nan
        return float(t.mean.loc[model, value]), u, lo, hi, str(cell_texts(t).loc[model, value])
    if not t.data.empty and value in set(t.data["value"]):
        r = t.data[t.data["value"] == value].iloc[0]
        lo, hi = float(r["lo"]), float(r["hi"])
        u = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else math.nan
        return float(r["mean"]), u, lo, hi, fmt_value(r["mean"], r["std"], r["n"], lo, hi, u)
    return math.nan, math.nan, math.nan, math.nan, ""


def reading(mean: float, u: float, lo: float, hi: float, published: float) -> str:
    """'agrees' when the published number lies in our 95% interval; else which side ours
    is on; 'no value' without a run, 'no interval' for one run that logged none."""
    if not math.isfinite(mean):
        return "no value"
    if math.isfinite(lo) and math.isfinite(hi):
        inside = lo <= published <= hi
    elif math.isfinite(u):
        inside = abs(mean - published) <= u
    else:
        return "no interval: ours " + ("higher" if mean > published else "lower or equal")
    if inside:
        return "agrees (inside our 95% interval)"
    return "ours higher" if mean > published else "ours lower"


def comparison(tables: list[Table], blocks: list[PublishedBlock]) -> pd.DataFrame:
    """One row per published number (COLUMNS), in the order the suite lists them."""
    by_dataset = {t.dataset: t for t in tables}
    rows = []
    for b in blocks:
        t = by_dataset.get(b.dataset)
        for model, vals in b.values.items():
            for value, pub in vals.items():
                m, u, lo, hi, text = _ours(t, model, value) if t is not None else \
                    (math.nan, math.nan, math.nan, math.nan, "")
                rows.append({"source": b.source, "dataset": b.dataset, "model": model,
                             "value": value, "ours": text, "ours_mean": m, "published": pub,
                             "difference": m - pub if math.isfinite(m) else math.nan,
                             "reading": reading(m, u, lo, hi, pub), "note": b.note})
    return pd.DataFrame(rows, columns=[*COLUMNS, "ours_mean", "note"])


def markdown(frame: pd.DataFrame) -> str:
    """The section under the board ('' when the suite publishes nothing)."""
    if frame.empty:
        return ""
    out = ["### Against published values\n",
           "Published numbers beside ours (never ranked). *agrees*: the published number lies "
           "inside our 95% interval.\n"]
    for (source, dataset), g in frame.groupby(["source", "dataset"], sort=False):
        notes = sorted({n for n in g["note"] if n})
        out.append(f"**{md_escape(str(source))}** on {md_escape(str(dataset))}"
                   + (f" ({md_escape('; '.join(notes))})" if notes else "") + "\n")
        body = pd.DataFrame({
            "model": [md_escape(str(m)) for m in g["model"]], "value": [md_escape(str(v)) for v in g["value"]],
            "ours": [o or "—" for o in g["ours"]],
            "published": [f"{p:.4g}" for p in g["published"]],
            "ours − published": ["—" if not math.isfinite(d) else f"{d:+.3g}"
                                 for d in g["difference"]],
            "reading": list(g["reading"])})
        out.append(body.to_markdown(index=False, disable_numparse=True) + "\n")
    return "\n".join(out)


def json_rows(frame: pd.DataFrame) -> list[dict]:
    return [{"source": r["source"], "dataset": r["dataset"], "model": r["model"],
             "value": r["value"], "ours": None if not math.isfinite(r["ours_mean"]) else r["ours_mean"],
             "ours_text": r["ours"], "published": r["published"],
             "difference": None if not math.isfinite(r["difference"]) else r["difference"],
             "reading": r["reading"], "note": r["note"]} for _, r in frame.iterrows()]


def with_published(text: str, fmt: str, tables: list[Table], blocks: list[PublishedBlock]) -> str:
    """A rendered board with the section added: markdown gets it under the board, JSON a
    top-level `published` list (HTML: render_html's `published`); CSV and LaTeX stay one
    table each (their readers expect one), so they are returned as they are."""
    if not blocks:
        return text
    frame = comparison(tables, blocks)
    if fmt == "markdown":
        return text.rstrip("\n") + "\n\n" + markdown(frame)
    if fmt == "json":
        obj = json.loads(text)
        obj["published"] = json_rows(frame)
        return json.dumps(obj) + "\n"
    return text
