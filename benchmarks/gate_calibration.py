"""Gate calibration: how often the copying gates flag honest models, and how often they catch
copiers, measured by simulation through the board's own gate code (bench.report.gates).

Each simulated board has a training set T, a held-out real row V (served as a model, counted
by its distinct images) and K models. Every model gets the three copying tests a board can
hold: authenticity against the held-out row (Wilson intervals), the data-copying test's
p-value (C_T over its null sd) and the near-copies test (bench.metrics.functional.near_copies);
then `board_flags` flags it or not, Bonferroni over the board's tests at 5%.

Honest models:
- `real split`: T, V and the model are disjoint random splits of the 1,797 digits;
- `gaussian`: T, V and the model are fresh draws of one per-class Gaussian fitted to the
  digits (a perfect generator: the same distribution, nothing copied), with pools of 200,
  500 and the training size, and boards of 1, 5 and 20 models sharing T and V.
Copiers (boards of 1, T and V real digit splits): exact copies of T, 100-image replays,
copies with Gaussian pixel noise of sd 10 and 20 (on 0-255).

Features are the raw pixels (64-d, 0-255): the gates read whatever features the suite
extracts, and pixels make 400 boards of 20 models affordable on a CPU. What depends only on
T and V (C_T's k-means partitions and the held-out side, the near-copies radius,
authenticity's training radii) is computed once per board by the functional metrics' `*_many`
forms, which return the values of one call per model. The rows of one group (the Gaussian
rows; the copier rows) share T and V for a given simulation index, so T's partitions are
fitted once for the group: rows are correlated with each other, each row's boards are
independent. Simulation indices run outermost, so a run cut short has as many boards in
every row.

    python benchmarks/gate_calibration.py              # the docs' table (see docs for the time)
    python benchmarks/gate_calibration.py --sims 40    # a quick look
    python benchmarks/gate_calibration.py --markdown   # the table as markdown
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.metrics.functional.authenticity import authenticity_many
from bench.metrics.functional.data_copying import data_copying_detail_many
from bench.metrics.functional.near_copies import near_copies_many
from bench.record.values import Value, wilson
from bench.report.gates import board_flags

LEVEL = 0.05
HELD = "held_out"
DECLS = {
    "authenticity": Value("score", "target", "memorisation", ref=True, gate="below_ref",
                          gate_kind="copies"),
    "data_copying_p": Value("diagnostic", "higher", gate="p", gate_at=LEVEL, gate_kind="copies"),
    "near_copies_p": Value("diagnostic", "higher", gate="p", gate_at=LEVEL, gate_kind="copies"),
}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x * 255.0 / 16.0).astype(np.float32), y.astype(np.int64)


class _KMeansOnce:
    """sklearn's KMeans, fitted once per (training set, seed): C_T's cells come from the
    training features alone, so every model of a board shares them."""

    fitted: dict[tuple, object] = {}

    def __init__(self, **kw):
        self.kw = kw

    def fit(self, x):
        from sklearn.cluster import KMeans

        key = (x.shape, float(x.sum()), float((x[::97] ** 2).sum()), tuple(sorted(self.kw.items())))
        if key not in self.fitted:
            if len(self.fitted) > 64:
                self.fitted.clear()
            self.fitted[key] = KMeans(**self.kw).fit(x)
        return self.fitted[key]


sys.modules["bench.metrics.functional.data_copying"].KMeans = _KMeansOnce  # type: ignore[attr-defined]


@dataclass
class Gaussian:
    """Per-class Gaussians fitted to the digits (covariance shrunk towards its diagonal so
    every class has a proper one): fresh samples of one fixed distribution."""

    means: np.ndarray
    chols: np.ndarray
    prior: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> Gaussian:
        means, chols = [], []
        for c in range(10):
            xc = x[y == c]
            cov = np.cov(xc, rowvar=False)
            cov = 0.9 * cov + 0.1 * np.diag(np.diag(cov)) + 1.0 * np.eye(x.shape[1])
            means.append(xc.mean(0))
            chols.append(np.linalg.cholesky(cov))
        return cls(np.array(means), np.array(chols), np.bincount(y, minlength=10) / len(y))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        c = rng.choice(10, size=n, p=self.prior)
        z = rng.standard_normal((n, self.means.shape[1]))
        out = np.empty_like(z)
        for k in np.unique(c):  # one matrix product per class (a per-sample einsum is slow)
            at = c == k
            out[at] = self.means[k] + z[at] @ self.chols[k].T
        return out


def _auth(auth: np.ndarray) -> tuple[float, float]:
    """Authenticity and its Wilson 95% half-width from per-image verdicts."""
    lo, hi = wilson(int(auth.sum()), len(auth))
    return float(auth.mean()), (hi - lo) / 2


def _board(t: np.ndarray, v: np.ndarray, models: list[np.ndarray], seed: int
           ) -> list[set[str]]:
    """The values each model is flagged `copies` on, on a board of them with held-out row v.
    Each test is one call for the whole board (`*_many`): what depends only on T and V is
    computed once, the values are those of one call per model."""
    from scipy.special import ndtr

    t, v = (np.asarray(a, dtype=np.float32) for a in (t, v))  # as features are extracted
    models = [np.asarray(g, dtype=np.float32) for g in models]
    auths = authenticity_many(t, [v, *models])
    # the held-out row as a model: only its authenticity is read (the gates never test it)
    rows = {HELD: {"authenticity": _auth(auths[0]), "data_copying_p": (math.nan, math.nan),
                   "near_copies_p": (math.nan, math.nan)}}
    with warnings.catch_warnings():  # a pool of 200 keeps no cell at 20 cells: C_T is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        cts = data_copying_detail_many(t, v, models, num_cells=20, seed=seed, partitions=10)
    ncs = near_copies_many(t, models, seed=seed)
    for i, ((ct, sd, _), nc, auth) in enumerate(zip(cts, ncs, auths[1:], strict=True)):
        p_ct = float(ndtr(ct / sd)) if sd > 0 and math.isfinite(ct) else math.nan
        rows[f"m{i}"] = {"authenticity": _auth(auth), "data_copying_p": (p_ct, math.nan),
                         "near_copies_p": (nc.p_value, math.nan)}
    mean = pd.DataFrame({m: {c: x[0] for c, x in r.items()} for m, r in rows.items()}).T
    unc = pd.DataFrame({m: {c: x[1] for c, x in r.items()} for m, r in rows.items()}).T
    flags = board_flags(mean, unc, DECLS, HELD)
    return [{f.value for f in flags.get(f"m{i}", []) if f.kind == "copies"}
            for i in range(len(models))]


def _split(x: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    perm = rng.permutation(len(x))
    out, at = [], 0
    for s in sizes:
        out.append(x[perm[at:at + s]])
        at += s
    return out


def run(sims: int, seed: int = 0, rows: list[str] | None = None, threads: int = 1,
        out: str | None = None, every: int = 10, first: int = 0) -> pd.DataFrame:
    """The table, `sims` boards per case; `threads` per native pool (torch, OpenMP, BLAS);
    every `every` boards per row the table so far is written to `out` (markdown), if given;
    `first` > 0 runs simulation indices first..sims-1 only (the rest of a run cut short: add
    the counts of the two tables)."""
    from threadpoolctl import threadpool_limits

    from bench.executors.threads import applied

    # the work is many small (1,000 x 1,258) blocks: a second thread per pool only spins,
    # and on a shared machine it makes each block 10-50x slower (measured: sq_norms 5 ms
    # with 2 threads at load 11, 0.1 ms with 1)
    with applied(threads), threadpool_limits(threads):
        return _run(sims, seed, rows, out, every, first)


def _cases(seed: int) -> dict[str, tuple[str, str, Callable]]:
    """name -> (kind, group, builder(s) -> (T, V, [models])). The rows of one group share T
    and V for a given simulation index s (the k-means partitions of T are then fitted once
    for all of them): rows are correlated with each other, each row's boards independent."""
    x, y = _digits()
    gauss = Gaussian.fit(x, y)

    def rng(*key: int) -> np.random.Generator:
        return np.random.default_rng([seed, *key])

    def real(s):
        t, v, g = _split(x, (898, 450, 449), rng(0, s))
        return t, v, [g]

    def gaussian(sizes):
        def build(s):
            r = rng(1, s)  # T and V: the group's; the models: the row's own
            t, v = gauss.sample(1258, r), gauss.sample(539, r)
            r = rng(1, s, *sizes)
            return t, v, [gauss.sample(n, r) for n in sizes]
        return build

    def copier(row, make):
        def build(s):
            t, v = _split(x, (1258, 539), rng(2, s))
            return t, v, [make(t, rng(2, s, row))]
        return build

    def noisy(sd):
        return lambda t, r: t[r.permutation(len(t))] + r.normal(0, sd, t.shape)

    return {
        "real split (898 / 450 / 449), board of 1": ("honest", "real", real),
        "gaussian, pool of 1,258, board of 1": ("honest", "gaussian", gaussian((1258,))),
        "gaussian, pool of 500, board of 1": ("honest", "gaussian", gaussian((500,))),
        "gaussian, pool of 200, board of 1": ("honest", "gaussian", gaussian((200,))),
        "gaussian, 1,000 each, board of 5": ("honest", "gaussian", gaussian((1000,) * 5)),
        "gaussian, 1,000 each, board of 20": ("honest", "gaussian", gaussian((1000,) * 20)),
        "exact copies of T (1,258)": (
            "copier", "copies", copier(0, lambda t, r: t[r.permutation(len(t))])),
        "100-image replay (1,258 draws)": (
            "copier", "copies",
            copier(1, lambda t, r: t[r.choice(r.permutation(len(t))[:100], len(t))])),
        "copies + noise sd 10": ("copier", "copies", copier(2, noisy(10))),
        "copies + noise sd 20": ("copier", "copies", copier(3, noisy(20))),
    }


def _run(sims: int, seed: int, rows: list[str] | None, out: str | None = None,
         every: int = 10, first: int = 0) -> pd.DataFrame:
    cases = {n: c for n, c in _cases(seed).items() if not rows or any(r in n for r in rows)}
    counts = {n: {"boards": 0, "models": 0, "per model": 0, "per board": 0, "seconds": 0.0,
                  **dict.fromkeys(DECLS, 0)} for n in cases}
    # simulation index outermost: every row advances together (a run cut short has the
    # same number of boards in every row), and a group's T is fitted once per index
    for s in range(first, sims):
        for name, (_, _, build) in cases.items():
            t0 = time.perf_counter()
            t, v, models = build(s)
            flagged = _board(t, v, models, seed=s)
            k = counts[name]
            k["boards"] += 1
            k["models"] += len(flagged)
            k["per model"] += sum(bool(f) for f in flagged)
            k["per board"] += any(flagged)
            for f in flagged:
                for c in f:
                    k[c] += 1
            k["seconds"] += time.perf_counter() - t0
        if (s + 1 - first) % every == 0 or s + 1 == sims:
            table = _table(cases, counts)
            print(f"{time.strftime('%H:%M:%S')} boards {first} to {s} per row", file=sys.stderr,
                  flush=True)
            if out:
                with open(out, "w") as fh:
                    fh.write(table.to_markdown(index=False, floatfmt=".3f") + "\n")
    return _table(cases, counts)


def _table(cases: dict, counts: dict) -> pd.DataFrame:
    rows = []
    for name, (kind, group, _) in cases.items():
        k = counts[name]
        lo_m, hi_m = wilson(k["per model"], max(k["models"], 1))
        lo_b, hi_b = wilson(k["per board"], max(k["boards"], 1))
        rows.append({"case": name, "kind": kind, "group": group, "boards": k["boards"],
                     "models": k["models"], "models flagged": k["per model"],
                     "boards flagged": k["per board"],
                     "flagged per model": k["per model"] / max(k["models"], 1),
                     "per model 95%": f"[{lo_m:.3f}, {hi_m:.3f}]",
                     "flagged per board": k["per board"] / max(k["boards"], 1),
                     "per board 95%": f"[{lo_b:.3f}, {hi_b:.3f}]",
                     **{f"flags by {c}": k[c] for c in DECLS},
                     "seconds": round(k["seconds"], 1)})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=400, help="boards simulated per case (docs: 400)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", nargs="*", help="only the cases whose name contains one of these")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--threads", type=int, default=1, help="threads per native pool (default 1)")
    ap.add_argument("--out", help="write the table so far here (markdown) as it runs")
    ap.add_argument("--every", type=int, default=10, help="boards per row between writes")
    ap.add_argument("--first", type=int, default=0, help="first simulation index (to resume)")
    args = ap.parse_args()
    table = run(args.sims, args.seed, args.rows, args.threads, args.out, args.every, args.first)
    print(table.to_markdown(index=False, floatfmt=".3f") if args.markdown
          else table.to_string(index=False))


if __name__ == "__main__":
    main()
