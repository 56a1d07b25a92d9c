"""Two suite runs (or a history of them) -> per-cell changes, judged by direction and noise.

A change is a regression only when it goes the wrong way (per the value's declared ideal,
bench.record.values: lower for `higher`, higher for `lower`, and farther from the target for a
`target` ideal) by more than a relative threshold (default 5%, per value overridable)
AND beyond the noise band. With a history of earlier suite runs, the change is measured from
a baseline of *known-good* runs: per cell, the earlier runs whose own comparison did not find
that cell regressed (a run accepted on purpose, `bench compare --accept`, counts as good and
starts the baseline afresh). The baseline is their median, the noise band a robust spread
(the MAD of the night-to-night differences, scaled to a standard deviation), so a regressed
night neither widens the band nor moves the baseline, and a regression that persists or
returns is reported every night until it is fixed or accepted. Without enough history, the
base run and the spread over repeats of both runs. A metric version change starts a new
history segment: it is reported, never flagged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.core.registry import did_you_mean
from bench.core.safe_names import md_text
from bench.record.cell_record import TAG
from bench.record.values import Value, is_interval
from bench.report.formats import COMPARE_FORMATS

Key = tuple[str, str, str, str]  # dataset, model, metric, value


@dataclass
class CompareConfig:
    threshold: float = 0.05  # relative change that matters, by default
    thresholds: dict[str, float] = field(default_factory=dict)  # per value name
    z: float = 4.0  # noise band in standard deviations (few history points: heavy tails)
    min_history: int = 3  # known-good earlier runs needed to use the history's spread
    history: int | None = None  # known-good runs per cell in the baseline (None: all given)


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


REGRESSED = f"{TAG}regressed"  # suite run tag: the cells its nightly comparison found regressed
BASELINE = f"{TAG}baseline"  # suite run tag: "accepted" = made the baseline on purpose
_TAG_MAX = 5000  # MLflow allows 8000 characters in a tag value; older servers 5000


@dataclass(eq=False)
class Night:
    """One suite run as a point of history: its cell runs, the cells its own comparison found
    regressed (None: no verdict recorded, `judge` finds it again) and whether it was made the
    baseline on purpose (`bench compare --accept`)."""

    runs: pd.DataFrame
    regressed: frozenset[Key] | None = None
    accepted: bool = False

    @cached_property
    def agg(self) -> pd.DataFrame:
        return _agg(long_values(self.runs))


def _night(x: pd.DataFrame | Night) -> Night:
    return x if isinstance(x, Night) else Night(x)


def regressed_keys(table: pd.DataFrame | None) -> frozenset[Key]:
    """The (dataset, model, metric, value) rows a comparison found regressed (None: none)."""
    if table is None or table.empty or "status" not in table.columns:
        return frozenset()
    reg = table[table["status"] == "regression"]
    return frozenset(zip(reg["dataset"].astype(str), reg["model"].astype(str), reg["metric"].astype(str),
                         reg["value"].astype(str), strict=True))


def verdict_tags(table: pd.DataFrame | None) -> dict[str, str]:
    """The tag a nightly writes on its suite run so that later nights leave its regressed cells
    out of their baseline: a JSON list of [dataset, model, metric, value] (None: the first
    night, nothing regressed). Too many for one tag:
    "compare.json" (not read back: later comparisons judge that night again)."""
    text = json.dumps(sorted(map(list, regressed_keys(table))), separators=(",", ":"))
    return {REGRESSED: text if len(text) <= _TAG_MAX else "compare.json"}


def accepted_tags() -> dict[str, str]:
    return {BASELINE: "accepted"}


def marks_of(tags: Mapping[str, str]) -> tuple[frozenset[Key] | None, bool]:
    """(regressed cells or None when not recorded, accepted) from a suite run's tags. A run of
    an older bench that tagged only the count of regressions: known clean when that is 0."""
    accepted = tags.get(BASELINE) == "accepted"
    text = tags.get(REGRESSED)
    if text is not None and text.startswith("["):
        try:
            return frozenset(tuple(map(str, k)) for k in json.loads(text) if len(k) == 4), accepted  # type: ignore[misc]
        except (ValueError, TypeError):
            return None, accepted
    if text is None and tags.get(f"{TAG}regressions") == "0":
        return frozenset(), accepted
    return None, accepted


def _known_good(key: Key, version: object, past: Sequence[Night], limit: int) -> tuple[list[pd.Series], int]:
    """The agg rows of `key` in the known-good runs of `past` (newest first), at most `limit`,
    back to the newest accepted run; and how many regressed runs were left out."""
    good: list[pd.Series] = []
    left_out = 0
    for h in past:
        a = h.agg
        if key in a.index and a.loc[key, "version"] == version:
            if h.accepted or h.regressed is None or key not in h.regressed:
                good.append(a.loc[key])
            else:
                left_out += 1
        if h.accepted or len(good) >= limit:
            break
    return good, left_out


def night_to_night_sd(xs: np.ndarray) -> float:
    """The noise of a series of nights (oldest first) as a standard deviation: the MAD of the
    night-to-night differences (scaled to a normal SD) over sqrt(2). Differences around their
    median do not see a steady drift, and the MAD does not see a few outlying nights, so
    neither widens the band (the moving range of a Shewhart individuals chart, made robust)."""
    from scipy import stats  # here: importing scipy.stats costs every `bench` command 1-2 s

    if len(xs) < 2:
        return float("nan")
    return float(stats.median_abs_deviation(np.diff(xs), scale="normal")) / math.sqrt(2)


def _repeats_sd(a: pd.Series, b: pd.Series) -> float:
    """The spread of the difference of two runs' means from their repeats (0: no repeats)."""
    s2 = sum((r["std"] ** 2 / r["n"]) for r in (a, b) if r["n"] > 1 and not pd.isna(r["std"]))
    return math.sqrt(s2)


def compare(base: pd.DataFrame | Night, new: pd.DataFrame | Night,
            history: Sequence[pd.DataFrame | Night] | None = None,
            cfg: CompareConfig | None = None, check_names: bool = True) -> pd.DataFrame:
    """Rows per (dataset, model, metric, value): base, baseline, new, change, noise, verdict.

    `history`: earlier suite runs, newest first, the base run usually the first; each a frame
    of cell runs or a `Night` (with its recorded verdict). Per cell, the known-good ones (at most
    `cfg.history`) are the baseline: their median, and `night_to_night_sd` as the noise, when
    there are `cfg.min_history` of them; else the newest known-good run (or the base) and the
    repeats' spread. A per-value threshold for a value neither run has is refused (a typo)
    unless not `check_names`."""
    cfg = cfg or CompareConfig()
    b, n = _night(base).agg, _night(new).agg
    if n.empty:
        raise BenchError("the new suite run has no finished cells to compare")
    past = [_night(h) for h in (history or [])]
    limit = len(past) if cfg.history is None else cfg.history
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
        good, left_out = _known_good(key, nr["version"], past, limit) if limit > 0 else ([], 0)
        ref = good[0] if good else br  # the run whose repeats stand for the baseline's
        rep = _repeats_sd(ref, nr)
        if len(good) >= cfg.min_history:
            xs = np.array([float(g["mean"]) for g in good][::-1])
            center = float(np.median(xs))
            # a new night against the median of k nights: its own noise and the median's
            # (variance pi/2 * sd^2 / k); never narrower than the repeats say
            spread = max(night_to_night_sd(xs) * math.sqrt(1 + math.pi / (2 * len(xs))), rep)
            source = "history"
        else:
            center = float(np.median([float(g["mean"]) for g in good])) if good else float(br["mean"])
            spread, source = (rep, "repeats") if rep > 0 else (float("nan"), "none")
        change = float(nr["mean"]) - center
        rel = change / abs(center) if center != 0 else (math.inf if change else 0.0)
        if source == "none":
            zscore = float("nan")
        else:
            zscore = change / spread if spread > 0 else (math.inf if change else 0.0)
        worse = is_worse(decl, center, nr["mean"], nr["target"])
        limit_rel = cfg.thresholds.get(row["value"], cfg.threshold)
        beyond_noise = source == "none" or abs(zscore) > cfg.z
        if abs(rel) > limit_rel and beyond_noise and decl.role != "score":
            status = "changed"  # a diagnostic or data value: shown, never a regression
        elif abs(rel) > limit_rel and beyond_noise:
            status = "regression" if worse else "improvement"
        else:
            status = "unchanged"
        # the band of new values that are no change: within the threshold of the baseline, or
        # within z spreads of it; its hull, for plots (bench.report.html)
        width = limit_rel * abs(center)
        lo, hi = center - width, center + width
        if source != "none" and spread > 0 and math.isfinite(spread):
            lo, hi = min(lo, center - cfg.z * spread), max(hi, center + cfg.z * spread)
        extra = {"note": f"{left_out} regressed run(s) left out of the baseline"} if left_out else {}
        rows.append({**row, "baseline": center, "n_baseline": max(len(good), 1), "change": change,
                     "rel_change": rel, "z": zscore, "noise": source, "threshold": limit_rel,
                     "band_lo": lo, "band_hi": hi, "status": status, **extra})
    return pd.DataFrame(rows)


def judge(nights: Sequence[Night], cfg: CompareConfig | None = None, tables_from: int = 0
          ) -> list[pd.DataFrame | None]:
    """Each night (oldest first) compared with the one before it and the known-good nights
    before that, as `bench nightly` compared it. A night without a recorded verdict gets the
    one found here, so later nights leave its regressed cells out of their baseline. Returns
    the comparison of each night from `tables_from` on (None for the first night, an empty
    one, and earlier nights whose verdict was recorded: those are not compared again)."""
    cfg = cfg or CompareConfig()
    out: list[pd.DataFrame | None] = []
    for i, night in enumerate(nights):
        wanted = i >= tables_from or night.regressed is None
        if i == 0 or not wanted or nights[i - 1].runs.empty or night.runs.empty:
            if night.regressed is None and i == 0:
                night.regressed = frozenset()  # the first night is the baseline
            out.append(None)
            continue
        earlier = list(nights[i - 1::-1]) if cfg.history != 0 else None
        table = compare(nights[i - 1], night, earlier, cfg, check_names=False)
        if night.regressed is None:
            night.regressed = regressed_keys(table)
        out.append(table)
    return out


def trends(points: list[tuple[str, str, pd.DataFrame]], history: int = 7,
           cfg: CompareConfig | None = None, last: int | None = None,
           marks: Mapping[str, tuple[frozenset[Key] | None, bool]] | None = None) -> pd.DataFrame:
    """The ranked values of the last suite runs, as `bench compare` judges them night by night.

    `points`: (label, suite run id, its cell runs) oldest first. Each run is compared with
    the one before it and the known-good runs before that (at most `history` per cell), as
    `bench nightly` does (`judge`), so a run's band and its verdict are what that night's
    comparison said, and a regression that persists or comes back is marked every night.
    `marks`: per run id, the verdict its nightly recorded and whether it was accepted
    (`marks_of`); runs without one are judged here. Only each metric's primary score of the
    competing (non-reference) models is kept. `last`: only the last runs are returned (the
    earlier points are their history).

    One row per (dataset, model, metric, value, run): `i` (0 = oldest shown), `label`, `run_id`,
    `mean`, `band_lo`/`band_hi` (NaN for the first run and after a metric version change),
    `status` (first, regression, improvement, unchanged, new, new segment), `ideal`, and
    `symbol`, the board's header mark of the value (↑, ↓, →ref, →0)."""
    cols = ["dataset", "model", "metric", "value", "i", "label", "run_id", "mean", "band_lo",
            "band_hi", "status", "ideal", "symbol"]
    cfg = replace(cfg or CompareConfig(), history=history)
    marks = marks or {}
    nights = [Night(runs, *marks.get(rid, (None, False))) for _, rid, runs in points]
    start = max(0, len(points) - last) if last else 0
    tables = judge(nights, cfg, tables_from=start)
    rows = []
    for i, ((label, rid, runs), table) in enumerate(zip(points, tables, strict=True)):
        if runs.empty or i < start:
            continue
        keep = _primary_keys(runs)
        if table is None:
            agg = nights[i].agg.reset_index()
            agg = agg.assign(band_lo=np.nan, band_hi=np.nan, status="first", ideal=agg["decl"].map(lambda d: d.ideal),
                             symbol=agg["decl"].map(lambda d: d.symbol))
        else:
            agg = table.rename(columns={"new": "mean"})
            agg["symbol"], agg["ideal"] = agg["ideal"], agg["ideal_name"]  # compare's `ideal` is the mark
        for r in agg.itertuples(index=False):
            if (r.dataset, r.model, r.metric, r.value) in keep:
                rows.append({"dataset": r.dataset, "model": r.model, "metric": r.metric, "value": r.value,
                             "i": i - start, "label": label, "run_id": rid, "mean": r.mean,
                             "band_lo": getattr(r, "band_lo", np.nan), "band_hi": getattr(r, "band_hi", np.nan),
                             "status": r.status, "ideal": r.ideal, "symbol": r.symbol})
    return pd.DataFrame(rows, columns=cols)


def _primary_keys(runs: pd.DataFrame) -> set[tuple[str, str, str, str]]:
    """(dataset, model, metric, primary value) of the competing models' cells."""
    if "primary" not in runs.columns:
        return set()
    ref = runs["reference"].astype(bool) if "reference" in runs.columns else pd.Series(False, index=runs.index)
    sel = runs[~ref & runs["primary"].astype(bool)]
    return set(zip(sel["dataset"].astype(str), sel["model"].astype(str), sel["metric"].astype(str),
                   sel["primary"].astype(str), strict=True))


FORMATS = COMPARE_FORMATS  # what render() writes (bench.report.formats)


JSON_ROW = ["status", "dataset", "model", "metric", "value", "role", "ideal", "target", "target_value",
            "base", "base_std", "n_base", "baseline", "n_baseline", "new", "new_std", "n_new", "change",
            "rel_change", "z", "noise", "threshold", "note"]


def to_json(df: pd.DataFrame, suite: str | None = None, base: str | None = None,
            new: str | None = None, cfg: CompareConfig | None = None) -> dict:
    """The comparison as one object: which suite runs, the thresholds, how many regressions,
    and a row per value in the leaderboard JSON's vocabulary (`ideal`: higher, lower or
    target; `target`: ref, a fallback value's name or the number; `target_value`: the
    resolved number; `baseline`: the median of the `n_baseline` known-good runs the change is
    measured from). NaN is null."""
    cfg = cfg or CompareConfig()
    rows = df.rename(columns={"ideal": "symbol", "ideal_name": "ideal", "target": "target_value",
                              "target_of": "target"}).reindex(columns=JSON_ROW)
    records = json.loads(rows.to_json(orient="records")) if not rows.empty else []
    records = [{k: v for k, v in r.items() if not (k == "note" and v is None)} for r in records]
    status = df["status"] if "status" in df.columns else pd.Series(dtype=str)
    return {"suite": suite, "base": base, "new": new, "threshold": cfg.threshold,
            "thresholds": dict(cfg.thresholds), "z": cfg.z, "history": cfg.history,
            "regressions": int((status == "regression").sum()),
            "improvements": int((status == "improvement").sum()), "rows": records}


def render(df: pd.DataFrame, fmt: str = "markdown", suite: str | None = None, base: str | None = None,
           new: str | None = None, cfg: CompareConfig | None = None) -> str:
    """Markdown (a table, regressions first) or JSON (`to_json`: the runs, thresholds, count)."""
    if fmt == "json":
        return json.dumps(to_json(df, suite, base, new, cfg), indent=1)
    if df.empty:
        return "(nothing to compare)\n"
    cols = ["status", "dataset", "model", "metric", "value", "ideal", "base", "baseline", "new",
            "rel_change", "z", "noise"]
    if "note" in df.columns and df["note"].notna().any():
        cols.append("note")
    show = df.reindex(columns=cols).copy()
    if "note" in show.columns:
        show["note"] = show["note"].fillna("")
    show["rel_change"] = show["rel_change"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}")
    show["z"] = show["z"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}")
    order = {"regression": 0, "improvement": 1, "changed": 2, "new segment": 3, "new": 4, "unchanged": 5}
    show = show.sort_values("status", key=lambda s: s.map(order), kind="stable")
    for c in ("dataset", "model", "metric", "value", "note"):  # names: no tag, link or extra cell
        if c in show.columns:
            show[c] = [v if pd.isna(v) else md_text(v) for v in show[c]]
    n_reg = int((df["status"] == "regression").sum())
    head = f"**{n_reg} regression(s)**, {int((df['status'] == 'improvement').sum())} improvement(s)\n\n"
    return head + show.to_markdown(index=False, floatfmt=".4g") + "\n"
