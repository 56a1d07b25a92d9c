"""Two suite runs (or a history of them) -> per-cell changes, judged by direction and noise.

A change is a regression only when it goes the wrong way (per the value's declared ideal,
bench.record.values: lower for `higher`, higher for `lower`, and farther from the target for a
`target` ideal) by more than a relative threshold (default 5%, per value overridable)
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

from bench.core.errors import BenchError
from bench.core.registry import did_you_mean
from bench.record.values import Value, is_interval


@dataclass
class CompareConfig:
    threshold: float = 0.05  # relative change that matters, by default
    thresholds: dict[str, float] = field(default_factory=dict)  # per value name
    z: float = 4.0  # noise band in standard deviations (few history points: heavy tails)
    min_history: int = 3  # earlier runs needed to use the history's spread


def long_values(runs: pd.DataFrame) -> pd.DataFrame:
    """Cell runs -> one row per (dataset, model, metric, value, repeat), with the value's
    declaration and its target (for target ideals: the held-out row's value in the same runs,
    else the fallback value of the same run, else the fixed number; NaN if none). Interval
    bounds (`<value>.lo/.hi`) are not compared on their own."""
    cols = ["dataset", "model", "metric", "value", "repeat", "x", "decl", "target", "metric_version"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    runs = runs.copy()
    if "values" not in runs.columns:
        runs["values"] = [{} for _ in range(len(runs))]
    if "held_out" not in runs.columns:
        runs["held_out"] = False
    mcols = [c for c in runs.columns if c.startswith("m:")]
    long = runs.melt(id_vars=["dataset", "model", "metric", "repeat", "values", "held_out",
                              "metric_version"],
                     value_vars=mcols, var_name="value", value_name="x").dropna(subset=["x"])
    long["value"] = long["value"].str[2:]
    long = long[~long["value"].map(is_interval)].copy()
    long["decl"] = [(vals or {}).get(v) or Value("diagnostic")
                    for vals, v in zip(long["values"], long["value"], strict=True)]
    held = long[long["held_out"].astype(bool)].groupby(["dataset", "metric", "value"])["x"].mean()
    same_run = long.set_index(["dataset", "model", "metric", "repeat", "value"])["x"]
    targets = []
    for r in long.itertuples(index=False):
        d: Value = r.decl
        t = math.nan
        if d.ideal == "target":
            if d.ref and (r.dataset, r.metric, r.value) in held.index:
                t = float(held[(r.dataset, r.metric, r.value)])
            elif d.fallback is not None and (r.dataset, r.model, r.metric, r.repeat, d.fallback) in same_run.index:
                t = float(same_run[(r.dataset, r.model, r.metric, r.repeat, d.fallback)])
            elif d.target is not None:
                t = float(d.target)
        targets.append(t)
    long["target"] = targets
    return long[cols]


def _agg(long: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "model", "metric", "value"]
    return long.groupby(keys).agg(mean=("x", "mean"), std=("x", "std"), n=("x", "count"),
                                  decl=("decl", "first"), target=("target", "mean"),
                                  version=("metric_version", "first"))


def target_of(decl: Value) -> str | None:
    """What a target ideal aims at, as the leaderboard's JSON writes it: "ref" (the held-out
    row), the fallback value's name, or the number; None for higher/lower."""
    if decl.ideal != "target":
        return None
    if decl.ref:
        return "ref"
    return decl.fallback or (f"{decl.target:g}" if decl.target is not None else None)


def is_worse(decl: Value, base: float, new: float, target: float) -> bool:
    """Did the value move away from its ideal? For a target: farther from it (a target that
    cannot be resolved falls back to "any change is suspicious": never worse, reported)."""
    if decl.ideal == "higher":
        return new < base
    if decl.ideal == "lower":
        return new > base
    if math.isnan(target):
        return False
    return abs(new - target) > abs(base - target)


def compare(base: pd.DataFrame, new: pd.DataFrame, history: list[pd.DataFrame] | None = None,
            cfg: CompareConfig | None = None, check_names: bool = True) -> pd.DataFrame:
    """Rows per (dataset, model, metric, value): base, new, change, noise, verdict. A
    per-value threshold for a value neither run has is refused (a typo) unless not
    `check_names`."""
    cfg = cfg or CompareConfig()
    b, n = _agg(long_values(base)), _agg(long_values(new))
    if n.empty:
        raise BenchError("the new suite run has no finished cells to compare")
    hist = [_agg(long_values(h)) for h in (history or [])]
    names = sorted({str(k[3]) for k in (*b.index, *n.index)})
    for name in cfg.thresholds if check_names else ():
        if name not in names:
            raise BenchError(f"--threshold-for {name}: no value of this name in the compared suite "
                             f"runs.{did_you_mean(name, names)} Values: {', '.join(names)}.")
    rows = []
    for key, nr in n.iterrows():
        row = dict(zip(["dataset", "model", "metric", "value"], key, strict=True))
        decl: Value = nr["decl"]
        row.update(new=nr["mean"], new_std=nr["std"], n_new=int(nr["n"]), role=decl.role,
                   ideal=decl.symbol, ideal_name=decl.ideal, target_of=target_of(decl),
                   target=nr["target"])
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
        worse = is_worse(decl, br["mean"], nr["mean"], nr["target"])
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
        if abs(rel) > limit and beyond_noise and decl.role != "score":
            status = "changed"  # a diagnostic or data value: shown, never a regression
        elif abs(rel) > limit and beyond_noise:
            status = "regression" if worse else "improvement"
        else:
            status = "unchanged"
        # the band of new values that are no change: within the threshold of the base, or
        # (history, repeats) within z spreads of the center; its hull, for plots (bench.report.html)
        b0, width = float(br["mean"]), limit * abs(float(br["mean"]))
        lo, hi = b0 - width, b0 + width
        if source != "none" and spread > 0 and math.isfinite(spread):
            c0 = center if source == "history" else b0
            lo, hi = min(lo, c0 - cfg.z * spread), max(hi, c0 + cfg.z * spread)
        rows.append({**row, "change": change, "rel_change": rel, "z": zscore, "noise": source,
                     "threshold": limit, "band_lo": lo, "band_hi": hi, "status": status})
    return pd.DataFrame(rows)


def trends(points: list[tuple[str, str, pd.DataFrame]], history: int = 7,
           cfg: CompareConfig | None = None, last: int | None = None) -> pd.DataFrame:
    """The ranked values of the last suite runs, as `bench compare` judges them night by night.

    `points`: (label, suite run id, its cell runs) oldest first. Each run is compared with
    the one before it, with the runs before that as its history (as `bench nightly` does), so
    a run's band and its verdict are what that night's comparison said. Only each metric's
    primary score of the competing (non-reference) models is kept. `last`: only the last
    runs are returned (the earlier points are their history).

    One row per (dataset, model, metric, value, run): `i` (0 = oldest shown), `label`, `run_id`,
    `mean`, `band_lo`/`band_hi` (NaN for the first run and after a metric version change),
    `status` (first, regression, improvement, unchanged, new, new segment), `ideal`."""
    cols = ["dataset", "model", "metric", "value", "i", "label", "run_id", "mean", "band_lo",
            "band_hi", "status", "ideal"]
    cfg = cfg or CompareConfig()
    rows = []
    start = max(0, len(points) - last) if last else 0
    for i, (label, rid, runs) in enumerate(points):
        if runs.empty or i < start:
            continue
        keep = _primary_keys(runs)
        if i == 0 or points[i - 1][2].empty:
            agg = _agg(long_values(runs)).reset_index()
            agg = agg.assign(band_lo=np.nan, band_hi=np.nan, status="first", ideal=agg["decl"].map(lambda d: d.ideal))
        else:
            earlier = [p[2] for p in reversed(points[max(0, i - 1 - history):i - 1])]
            agg = compare(points[i - 1][2], runs, [points[i - 1][2], *earlier] if history else None,
                          cfg, check_names=False).rename(columns={"new": "mean"})
            agg["ideal"] = agg["ideal_name"]
        for r in agg.itertuples(index=False):
            if (r.dataset, r.model, r.metric, r.value) in keep:
                rows.append({"dataset": r.dataset, "model": r.model, "metric": r.metric, "value": r.value,
                             "i": i - start, "label": label, "run_id": rid, "mean": r.mean,
                             "band_lo": getattr(r, "band_lo", np.nan), "band_hi": getattr(r, "band_hi", np.nan),
                             "status": r.status, "ideal": r.ideal})
    return pd.DataFrame(rows, columns=cols)


def _primary_keys(runs: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    """(dataset, model, metric, primary value) of the competing models' cells."""
    if "primary" not in runs.columns:
        return set()
    ref = runs["reference"].astype(bool) if "reference" in runs.columns else pd.Series(False, index=runs.index)
    sel = runs[~ref & runs["primary"].astype(bool)]
    return set(zip(sel["dataset"].astype(str), sel["model"].astype(str), sel["metric"].astype(str),
                   sel["primary"].astype(str), strict=True))


FORMATS = ("markdown", "json")  # what render() writes


JSON_ROW = ["status", "dataset", "model", "metric", "value", "role", "ideal", "target", "target_value",
            "base", "base_std", "n_base", "new", "new_std", "n_new", "change", "rel_change", "z",
            "noise", "threshold", "note"]


def to_json(df: pd.DataFrame, suite: str | None = None, base: str | None = None,
            new: str | None = None, cfg: CompareConfig | None = None) -> dict:
    """The comparison as one object: which suite runs, the thresholds, how many regressions,
    and a row per value in the leaderboard JSON's vocabulary (`ideal`: higher, lower or
    target; `target`: ref, a fallback value's name or the number; `target_value`: the
    resolved number). NaN is null."""
    cfg = cfg or CompareConfig()
    rows = df.rename(columns={"ideal": "symbol", "ideal_name": "ideal", "target": "target_value",
                              "target_of": "target"}).reindex(columns=JSON_ROW)
    records = json.loads(rows.to_json(orient="records")) if not rows.empty else []
    records = [{k: v for k, v in r.items() if not (k == "note" and v is None)} for r in records]
    status = df["status"] if "status" in df.columns else pd.Series(dtype=str)
    return {"suite": suite, "base": base, "new": new, "threshold": cfg.threshold,
            "thresholds": dict(cfg.thresholds), "z": cfg.z,
            "regressions": int((status == "regression").sum()),
            "improvements": int((status == "improvement").sum()), "rows": records}


def render(df: pd.DataFrame, fmt: str = "markdown", suite: str | None = None, base: str | None = None,
           new: str | None = None, cfg: CompareConfig | None = None) -> str:
    """Markdown (a table, regressions first) or JSON (`to_json`: the runs, thresholds, count)."""
    if fmt == "json":
        return json.dumps(to_json(df, suite, base, new, cfg), indent=1)
    if df.empty:
        return "(nothing to compare)\n"
    cols = ["status", "dataset", "model", "metric", "value", "ideal", "base", "new", "rel_change", "z", "noise"]
    show = df.reindex(columns=cols).copy()
    show["rel_change"] = show["rel_change"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}")
    show["z"] = show["z"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}")
    order = {"regression": 0, "improvement": 1, "changed": 2, "new segment": 3, "new": 4, "unchanged": 5}
    show = show.sort_values("status", key=lambda s: s.map(order), kind="stable")
    n_reg = int((df["status"] == "regression").sum())
    head = f"**{n_reg} regression(s)**, {int((df['status'] == 'improvement').sum())} improvement(s)\n\n"
    return head + show.to_markdown(index=False, floatfmt=".4g") + "\n"
