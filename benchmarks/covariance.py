"""FeatureStats' covariance against ``np.cov`` (what pytorch-fid calls), in one run.

Both sides get the same float32 (N, d) features (Inception-sized by default: 10,000 x 2,048)
and are timed alternately, best of ``--repeats``, so that a shared machine's load hits both
alike. Prints both times, the ratio ours / np.cov and the largest relative difference of the
two covariances (pytorch-fid agreement is tested to 1e-10; this is typically ~1e-15).

    python benchmarks/covariance.py                 # 10,000 x 2,048, best of 5
    python benchmarks/covariance.py --n 50000 --repeats 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from bench.metrics.functional import FeatureStats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="samples (rows)")
    ap.add_argument("--d", type=int, default=2048, help="feature dimension")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    # a non-zero mean, like Inception pool features, so centring matters
    x = (rng.standard_normal((args.n, args.d)) + 3.0).astype(np.float32)

    sides: dict[str, Callable[[], np.ndarray]] = {
        "np.cov": lambda: np.cov(x, rowvar=False),
        "FeatureStats": lambda: FeatureStats.from_features(x).cov.numpy(),
    }
    best = dict.fromkeys(sides, float("inf"))
    out: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)

    ref = out["np.cov"]
    rel = float(np.abs(out["FeatureStats"] - ref).max() / np.abs(ref).max())
    print(f"covariance of {args.n:,} x {args.d:,} float32 features, best of {args.repeats}")
    for name, t in best.items():
        print(f"  {name:<13} {t:7.3f} s")
    print(f"  ratio FeatureStats / np.cov: {best['FeatureStats'] / best['np.cov']:.2f}")
    print(f"  max relative difference: {rel:.1e}")


if __name__ == "__main__":
    main()
