"""How much does the k-means seed move Meehan et al.'s C_T on the same data?

    OMP_NUM_THREADS=1 python benchmarks/data_copying_seed.py [--seeds 10]

Features: the bundled digits (scikit-learn's 8x8 UCI digits), raw pixels, 64-d (the
dimension Meehan, Chaudhuri and Dasgupta (AISTATS 2020) used: a 64-d autoencoder embedding
for MNIST, PCA-64 for ImageNet). The training split is cut in two: half A is the
"training set" T, half B plays a generator that never copies (fresh images of the same
distribution, C_T ~ 0), and A plus small pixel noise plays a copier (C_T << 0); the held-out
test set is the suite's val split. For each setting (cells, projection, n_init) C_T is
computed with S k-means seeds (0, 1000, 2000, ...: partitions > 1 use seed, seed + 1, ...)
on identical data; the table shows the range of C_T
over the seeds beside its null 95% half-width 1.96 * sqrt(sum w_c^2) (the weighted mean
of per-cell z-scores that are standard normal under "no copying"). The seed should move
C_T by less than that half-width.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.data.digits import Digits
from bench.metrics.functional import data_copying_detail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--configs", nargs="+", default=["1x1", "10x1", "30x1", "1x5", "1x10"],
                    help="k-means settings as N_INITxPARTITIONS")
    ap.add_argument("--cells", type=int, nargs="+", default=[20, 50])
    args = ap.parse_args()
    ds = Digits().load()
    x = ds.train_x.reshape(len(ds.train_x), -1).double() / 16.0  # digits pixels are 0..16
    val = ds.val_x.reshape(len(ds.val_x), -1).double() / 16.0
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
    a, b = x[perm[: len(x) // 2]], x[perm[len(x) // 2:]]
    copier = a + 0.02 * torch.from_numpy(np.random.default_rng(1).standard_normal(a.shape))
    print(f"digits: T={len(a)} train, fake={len(b)}, test={len(val)}, d={a.shape[1]}")
    print("| generator | cells | projection | n_init | partitions | C_T mean | C_T min..max over seeds | "
          "seed range | seed sd | null 95% half-width | cells kept | s per C_T |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for gen_name, fake in (("fresh (no copying)", b), ("copier (A + noise)", copier)):
        for cells in args.cells:
            for proj in ("none", "pca"):
                for n_init, parts in (map(int, c.split("x")) for c in args.configs):
                    t0 = time.perf_counter()
                    res = [data_copying_detail(a, val, fake, cells, seed=s * 1000, n_init=n_init,
                                               partitions=parts, projection=proj, pca_dim=32)
                           for s in range(args.seeds)]
                    dt = (time.perf_counter() - t0) / args.seeds
                    ct = np.array([r[0] for r in res])
                    half = 1.96 * np.mean([r[1] for r in res])
                    kept = [r[2] for r in res]
                    print(f"| {gen_name} | {cells} | {proj if proj == 'none' else 'pca-32'} | "
                          f"{n_init} | {parts} | {ct.mean():.3f} | {ct.min():.3f}..{ct.max():.3f} | "
                          f"{np.ptp(ct):.3f} | {ct.std(ddof=1):.3f} | {half:.3f} | {min(kept)}..{max(kept)} | {dt:.2f} |",
                          flush=True)


if __name__ == "__main__":
    main()
