"""Ranking of a leaderboard's models (bench.report.table.Table): dominance ranks per value
(`dominance`, `column_ranks`, `best_mask`), places by dominance over the headline pair
(`headline_pair`, `pair_dominance`, `places`), trade-offs and verdicts, the summary over
datasets (`summarize`), one tie order (`tie_key`) and the agreement of two rankings
(`ranking_agreement`). Numbers only: how they are written is bench.report.formatting's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.record.values import ASPECTS
from bench.report.table import NOT_RUN, PENDING, Table, first_line


def tie_key(good: float, model: str) -> tuple[float, str]:
    """The one order of models that tie (same tier and place in the summary, same tier in a
    table): better sort value first (goodness: higher is better; none last), then by name.
    A table's rows follow it, and the summary breaks ties on place by the tables' row order,
    so every format (markdown, CSV, JSON, LaTeX, HTML) lists tied models alike."""
    return (-float(good) if not pd.isna(good) else math.inf, str(model))


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
    other may be placed either way next to a third (docs/leaderboard.md). Computed once per
    row order (the summary and the typed board both read it)."""
    if "places" not in t._memo:
        t._memo["places"] = _places(t)
    return t._memo["places"].copy()


def _places(t: Table) -> pd.Series:
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
