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
extracts, and pixels make 400 boards of 20 models affordable on a CPU. C_T's k-means
partitions depend only on T, so they are fitted once per board (same values).

    python benchmarks/gate_calibration.py              # the docs' table (about an hour on 2 cores)
    python benchmarks/gate_calibration.py --sims 40    # a quick look
    python benchmarks/gate_calibration.py --markdown   # the table as markdown
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.metrics.functional import authenticity, data_copying_detail
from bench.metrics.functional.near_copies import near_copies
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
        return self.means[c] + np.einsum("nij,nj->ni", self.chols[c], z)


def _tests(t: np.ndarray, v: np.ndarray, g: np.ndarray, seed: int) -> dict[str, tuple[float, float]]:
    """value -> (mean, 95% half-width) of the three copying tests for one model."""
    t, v, g = (np.asarray(a, dtype=np.float32) for a in (t, v, g))  # as features are extracted
    _, auth = authenticity(t, g, per_sample=True)
    lo, hi = wilson(int(auth.sum()), len(auth))
    with warnings.catch_warnings():  # a pool of 200 keeps no cell at 20 cells: C_T is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        ct, sd, _ = data_copying_detail(t, v, g, num_cells=20, seed=seed, partitions=10)
    from scipy.special import ndtr

    p_ct = float(ndtr(ct / sd)) if sd > 0 and math.isfinite(ct) else math.nan
    nc = near_copies(t, g, seed=seed)
    return {"authenticity": (float(auth.mean()), (hi - lo) / 2),
            "data_copying_p": (p_ct, math.nan), "near_copies_p": (nc.p_value, math.nan)}


def _board(t: np.ndarray, v: np.ndarray, models: list[np.ndarray], seed: int
           ) -> list[set[str]]:
    """The values each model is flagged `copies` on, on a board of them with held-out row v."""
    rows = {HELD: _tests(t, v, v, seed)}  # the held-out row as a model: only its value is read
    _, auth = authenticity(t, v, per_sample=True)
    lo, hi = wilson(int(auth.sum()), len(auth))
    rows[HELD]["authenticity"] = (float(auth.mean()), (hi - lo) / 2)
    for i, g in enumerate(models):
        rows[f"m{i}"] = _tests(t, v, g, seed)
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


def run(sims: int, seed: int = 0, rows: list[str] | None = None) -> pd.DataFrame:
    x, y = _digits()
    gauss = Gaussian.fit(x, y)
    rng = np.random.default_rng(seed)
    cases = {
        # name: (kind, builder(rng) -> (T, V, [models]))
        "real split (898 / 450 / 449), board of 1": (
            "honest", lambda r: (lambda s: (s[0], s[1], [s[2]]))(_split(x, (898, 450, 449), r))),
        "gaussian, pool of 1,258, board of 1": (
            "honest", lambda r: (gauss.sample(1258, r), gauss.sample(539, r), [gauss.sample(1258, r)])),
        "gaussian, pool of 500, board of 1": (
            "honest", lambda r: (gauss.sample(1258, r), gauss.sample(539, r), [gauss.sample(500, r)])),
        "gaussian, pool of 200, board of 1": (
            "honest", lambda r: (gauss.sample(1258, r), gauss.sample(539, r), [gauss.sample(200, r)])),
        "gaussian, 1,000 each, board of 5": (
            "honest", lambda r: (gauss.sample(1258, r), gauss.sample(539, r),
                                 [gauss.sample(1000, r) for _ in range(5)])),
        "gaussian, 1,000 each, board of 20": (
            "honest", lambda r: (gauss.sample(1258, r), gauss.sample(539, r),
                                 [gauss.sample(1000, r) for _ in range(20)])),
    }

    def copier(make):
        def build(r):
            t, v = _split(x, (1258, 539), r)
            return t, v, [make(t, r)]
        return build

    cases.update({
        "exact copies of T (1,258)": ("copier", copier(lambda t, r: t[r.permutation(len(t))])),
        "100-image replay (1,258 draws)": (
            "copier", copier(lambda t, r: t[r.choice(r.permutation(len(t))[:100], len(t))])),
        "copies + noise sd 10": (
            "copier", copier(lambda t, r: t[r.permutation(len(t))] + r.normal(0, 10, t.shape))),
        "copies + noise sd 20": (
            "copier", copier(lambda t, r: t[r.permutation(len(t))] + r.normal(0, 20, t.shape))),
    })
    out = []
    for name, (kind, build) in cases.items():
        if rows and not any(s in name for s in rows):
            continue
        t0 = time.perf_counter()
        per_model, per_board, n_models = 0, 0, 0
        by_test = dict.fromkeys(DECLS, 0)
        for s in range(sims):
            t, v, models = build(rng)
            flagged = _board(t, v, models, seed=s)
            per_model += sum(bool(f) for f in flagged)
            n_models += len(flagged)
            per_board += any(flagged)
            for f in flagged:
                for c in f:
                    by_test[c] += 1
        rate_m, rate_b = per_model / n_models, per_board / sims
        lo_m, hi_m = wilson(per_model, n_models)
        lo_b, hi_b = wilson(per_board, sims)
        out.append({"case": name, "kind": kind, "boards": sims, "models": n_models,
                    "flagged per model": rate_m, "per model 95%": f"[{lo_m:.3f}, {hi_m:.3f}]",
                    "flagged per board": rate_b, "per board 95%": f"[{lo_b:.3f}, {hi_b:.3f}]",
                    **{f"by {c}": by_test[c] / n_models for c in DECLS},
                    "seconds": round(time.perf_counter() - t0, 1)})
        print(f"{name}: per model {rate_m:.3f} [{lo_m:.3f}, {hi_m:.3f}], per board {rate_b:.3f} "
              f"[{lo_b:.3f}, {hi_b:.3f}], by test {by_test} ({out[-1]['seconds']} s)",
              file=sys.stderr, flush=True)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=400, help="boards simulated per case (docs: 400)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", nargs="*", help="only the cases whose name contains one of these")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = ap.parse_args()
    table = run(args.sims, args.seed, args.rows)
    print(table.to_markdown(index=False, floatfmt=".3f") if args.markdown
          else table.to_string(index=False))


if __name__ == "__main__":
    main()
