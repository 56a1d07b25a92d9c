"""Two suite runs (or a history of them) -> per-cell changes, judged by direction and noise.

A change is a regression only when it goes the wrong way (per the metric's
`higher_is_better`) by more than a relative threshold (default 5%, per value overridable)
AND beyond the noise band: the spread over repeats of both runs, or, when a history of
earlier runs exists, a z-score against it (as conbench does). A metric version change
starts a new history segment: it is reported, never flagged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.errors import BenchError


@dataclass
class CompareConfig:
    threshold: float = 0.05  # relative change that matters, by default
    thresholds: dict[str, float] = field(default_factory=dict)  # per value name
    z: float = 4.0  # noise band in standard deviations (few history points: heavy tails)
    min_history: int = 3  # earlier runs needed to use the history's spread


def long_values(runs: pd.DataFrame) -> pd.DataFrame:
    """Cell runs -> one row per (dataset, model, metric, value, repeat)."""
    if runs.empty:
        return pd.DataFrame(columns=["dataset", "model", "metric", "value", "repeat", "x",
                                     "higher", "metric_version"])
    cols = [c for c in runs.columns if c.startswith("m:")]
    long = runs.melt(id_vars=["dataset", "model", "metric", "repeat", "directions", "metric_version"],
                     value_vars=cols, var_name="value", value_name="x").dropna(subset=["x"])
    long["value"] = long["value"].str[2:]
    long["higher"] = [bool(d.get(v, True)) for d, v in zip(long["directions"], long["value"], strict=True)]
    return long.drop(columns=["directions"])


def _agg(long: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "model", "metric", "value"]
    return long.groupby(keys).agg(mean=("x", "mean"), std=("x", "std"), n=("x", "count"),
                                  higher=("higher", "first"), version=("metric_version", "first"))


def compare(base: pd.DataFrame, new: pd.DataFrame, history: list[pd.DataFrame] | None = None,
            cfg: CompareConfig | None = None) -> pd.DataFrame:
    """Rows per (dataset, model, metric, value): base, new, change, noise, verdict."""
    cfg = cfg or CompareConfig()
    b, n = _agg(long_values(base)), _agg(long_values(new))
    if n.empty:
        raise BenchError("the new suite run has no finished cells to compare")
    hist = [_agg(long_values(h)) for h in (history or [])]
    rows = []
    for key, nr in n.iterrows():
        row = dict(zip(["dataset", "model", "metric", "value"], key, strict=True))
        row.update(new=nr["mean"], new_std=nr["std"], n_new=int(nr["n"]), higher_is_better=bool(nr["higher"]))
        if key not in b.index:
            rows.append({**row, "status": "new"})
            continue
        br = b.loc[key]
        row.update(base=br["mean"], base_std=br["std"], n_base=int(br["n"]))
        if br["version"] != nr["version"]:
            rows.append({**row, "status": "new segment",
                         "note": f"metric version {br['version']} -> {nr['version']}"})
            continue
        change = nr["mean"] - br["mean"]
        rel = change / abs(br["mean"]) if br["mean"] != 0 else (math.inf if change else 0.0)
        worse = change < 0 if nr["higher"] else change > 0
        # noise: the history's spread when there is enough of it, else the repeats' spread
        past = [h.loc[key, "mean"] for h in hist if key in h.index and h.loc[key, "version"] == nr["version"]]
        if len(past) >= cfg.min_history:
            center, spread, source = float(np.mean(past)), float(np.std(past, ddof=1)), "history"
            zscore = (nr["mean"] - center) / spread if spread > 0 else (math.inf if nr["mean"] != center else 0.0)
        else:
            s2 = sum((r["std"] ** 2 / r["n"]) for r in (br, nr) if r["n"] > 1 and not pd.isna(r["std"]))
            spread, source = (math.sqrt(s2) if s2 > 0 else float("nan")), "repeats" if s2 > 0 else "none"
            zscore = change / spread if s2 > 0 else float("nan")
        limit = cfg.thresholds.get(row["value"], cfg.threshold)
        beyond_noise = source == "none" or abs(zscore) > cfg.z
        if abs(rel) > limit and beyond_noise:
            status = "regression" if worse else "improvement"
        else:
            status = "unchanged"
        rows.append({**row, "change": change, "rel_change": rel, "z": zscore, "noise": source,
                     "threshold": limit, "status": status})
    return pd.DataFrame(rows)


def render(df: pd.DataFrame, fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(json.loads(df.to_json(orient="records")), indent=1)
    if df.empty:
        return "(nothing to compare)\n"
    cols = ["status", "dataset", "model", "metric", "value", "base", "new", "rel_change", "z", "noise"]
    show = df.reindex(columns=cols).copy()
    show["rel_change"] = show["rel_change"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}")
    show["z"] = show["z"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}")
    order = {"regression": 0, "improvement": 1, "new segment": 2, "new": 3, "unchanged": 4}
    show = show.sort_values("status", key=lambda s: s.map(order), kind="stable")
    n_reg = int((df["status"] == "regression").sum())
    head = f"**{n_reg} regression(s)**, {int((df['status'] == 'improvement').sum())} improvement(s)\n\n"
    return head + show.to_markdown(index=False, floatfmt=".4g") + "\n"
