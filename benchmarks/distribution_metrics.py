"""Time bench.metrics.functional against reference packages on the same features.

    python benchmarks/distribution_metrics.py            # full sizes (~4 min on 2 cores)
    python benchmarks/distribution_metrics.py --quick    # small sizes, smoke test

References: torch-fidelity (FID, KID, IS), pytorch-fid (FID via sqrtm), prdc
(precision/recall/density/coverage). Missing reference packages are skipped.
Authenticity, data copying and SWD have no maintained reference package; they
are timed on their own.
Features are synthetic, float32 and non-negative like Inception pool3
features, with the fake covariance close to the real one; both sides get the identical arrays. After small warm-up
calls (first-call LAPACK/BLAS/allocator set-up excluded for both sides), each
timing is one run, or the best of 2 (KID) or 3 (IS) runs because those are
short and allocator warm-up still shows in a first run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import subprocess
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bench.metrics.functional import (
    FeatureStats,
    FrechetReference,
    authenticity,
    data_copying,
    fid_from_features,
    inception_score,
    kid,
    prdc,
    sliced_wasserstein,
)


def _timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[Any, float]:
    """(result, best wall time over ``repeats`` runs); reference prints are silenced."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def _features(rng: np.random.Generator, n: int, mix: np.ndarray, shift: float) -> np.ndarray:
    base = rng.standard_normal((n, mix.shape[0]), dtype=np.float32)
    return np.abs(base @ mix + shift).astype(np.float32)  # non-negative like pool3


def _machine() -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"nproc={os.cpu_count()}  cpu={cpu}  torch={torch.__version__} "
        f"(threads={torch.get_num_threads()})  numpy={np.__version__}  cuda={gpu}  "
        f"loadavg(1/5/15 min, at end)={load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--device", default="cpu", help="device for our implementation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"loadavg at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    n_fid, d_fid = (2000, 256) if args.quick else (10_000, 2048)
    n_kid_subsets, kid_size = (10, 500) if args.quick else (100, 1000)
    n_prdc, d_prdc = (1000, 200) if args.quick else (5000, 1000)
    n_is, c_is = 10_000, 1008

    rng = np.random.default_rng(args.seed)
    # Fake covariance close to the real one (a slightly perturbed mixing
    # matrix), as for a decent generator: the reference's non-symmetric
    # eigensolver is much slower on such pairs than on unrelated covariances.
    mix = (rng.standard_normal((d_fid, d_fid)) / np.sqrt(d_fid)).astype(np.float32)
    mix_fake = mix + 0.1 * rng.standard_normal(mix.shape).astype(np.float32) / np.sqrt(d_fid)
    real, fake = _features(rng, n_fid, mix, 0.0), _features(rng, n_fid, mix_fake, 0.05)
    logits = (rng.standard_normal((n_is, c_is)) * 4).astype(np.float32)
    p_real = rng.standard_normal((n_prdc, d_prdc), dtype=np.float32)
    p_fake = rng.standard_normal((n_prdc, d_prdc), dtype=np.float32)
    dev = torch.device(args.device)

    def on_dev(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(dev)

    rows: list[tuple[str, str, float, float | None, float, float | None]] = []

    def record(
        name: str, ref_name: str, ours: tuple[float, float], ref: tuple[float, float] | None
    ) -> None:
        rows.append(
            (
                name,
                ref_name,
                ours[1],
                None if ref is None else ref[1],
                ours[0],
                None if ref is None else ref[0],
            )
        )
        print(f"  done: {name} vs {ref_name}", flush=True)

    # warm-ups (LAPACK/BLAS initialisation) for both sides
    small = rng.standard_normal((300, 64))
    small32 = torch.from_numpy(small.astype(np.float32)).to(dev)
    _timed(lambda: fid_from_features(small, small + 0.1))
    _timed(lambda: np.linalg.eigvals(np.cov(small, rowvar=False)))
    for x in (small32, small32.double()):
        _timed(lambda x=x: kid(x, x + 0.1, num_subsets=3, subset_size=100))
        _timed(lambda x=x: prdc(x, x + 0.1))
        _timed(lambda x=x: inception_score(x))
        _timed(lambda x=x: (x.cpu().numpy() @ x.cpu().numpy().T) ** 3)

    # ---- FID
    x_r, x_f = on_dev(real), on_dev(fake)
    ours_fid = _timed(lambda: fid_from_features(x_r, x_f))
    ref_cached = FrechetReference.from_features(x_r)
    fake_stats = FeatureStats.from_features(x_f)
    cached = _timed(lambda: ref_cached.distance_to_stats(fake_stats))
    try:
        import torch_fidelity.metric_fid as tf_fid

        def tf_fid_run() -> float:
            s1 = tf_fid.fid_features_to_statistics(torch.from_numpy(real))
            s2 = tf_fid.fid_features_to_statistics(torch.from_numpy(fake))
            return tf_fid.fid_statistics_to_metric(s1, s2, False)["frechet_inception_distance"]

        tf_fid_out: tuple[float, float] | None = _timed(tf_fid_run)
    except ImportError:
        tf_fid_out = None
    record(f"FID N={n_fid} d={d_fid}", "torch-fidelity 0.4.0", ours_fid, tf_fid_out)
    try:
        from pytorch_fid.fid_score import calculate_frechet_distance

        def pf_run() -> float:
            mu1, s1 = real.mean(0), np.cov(real, rowvar=False)
            mu2, s2 = fake.mean(0), np.cov(fake, rowvar=False)
            return float(calculate_frechet_distance(mu1, s1, mu2, s2))

        record(f"FID N={n_fid} d={d_fid}", "pytorch-fid 0.3.0", ours_fid, _timed(pf_run))
    except ImportError:
        pass
    if tf_fid_out is not None:
        # reference side does the same eigvals per fake set; stats excluded on both
        s1 = tf_fid.fid_features_to_statistics(torch.from_numpy(real))
        s2 = tf_fid.fid_features_to_statistics(torch.from_numpy(fake))
        tf_cached = _timed(
            lambda: tf_fid.fid_statistics_to_metric(s1, s2, False)["frechet_inception_distance"]
        )
        record("FID, stats given (cached real)", "torch-fidelity 0.4.0", cached, tf_cached)

    # ---- KID (float32 as Inception features come; then float64 on both sides)
    try:
        import torch_fidelity.metric_kid as tf_kid
    except ImportError:
        tf_kid = None
    for dtype in (np.float32, np.float64):
        r_np, f_np = real.astype(dtype), fake.astype(dtype)
        r_t, f_t = on_dev(r_np), on_dev(f_np)
        ours_kid = _timed(
            lambda r_t=r_t, f_t=f_t: kid(r_t, f_t, num_subsets=n_kid_subsets, subset_size=kid_size)[
                "kid_mean"
            ],
            repeats=2,
        )
        tf_kid_out = None
        if tf_kid is not None:
            tf_kid_out = _timed(
                lambda r_np=r_np, f_np=f_np: tf_kid.kid_features_to_metric(
                    torch.from_numpy(r_np),
                    torch.from_numpy(f_np),
                    kid_subsets=n_kid_subsets,
                    kid_subset_size=kid_size,
                    kid_kernel="poly",
                    kid_kernel_poly_degree=3,
                    kid_kernel_poly_gamma=None,
                    kid_kernel_poly_coef0=1,
                    rng_seed=0,
                    verbose=False,
                )["kernel_inception_distance_mean"],
                repeats=2,
            )
        record(
            f"KID N={n_fid} d={d_fid} {n_kid_subsets}x{kid_size} {np.dtype(dtype).name}",
            "torch-fidelity 0.4.0",
            ours_kid,
            tf_kid_out,
        )

    # ---- IS
    lg = on_dev(logits)
    ours_is = _timed(
        lambda: inception_score(lg, splits=10, shuffle=True, seed=2020)["is_mean"], repeats=3
    )
    try:
        import torch_fidelity.metric_isc as tf_isc

        tf_is_out: tuple[float, float] | None = _timed(
            lambda: tf_isc.isc_features_to_metric(torch.from_numpy(logits), 10, True, 2020)[
                "inception_score_mean"
            ],
            repeats=3,
        )
    except ImportError:
        tf_is_out = None
    record(f"IS N={n_is} C={c_is}", "torch-fidelity 0.4.0", ours_is, tf_is_out)

    # ---- PRDC
    pr, pf = on_dev(p_real), on_dev(p_fake)
    ours_prdc = _timed(lambda: prdc(pr, pf, k=5))
    try:
        from prdc import compute_prdc

        ref_prdc = _timed(lambda: compute_prdc(p_real, p_fake, nearest_k=5))
    except ImportError:
        ref_prdc = None
    for key in ("precision", "recall", "density", "coverage"):
        rows.append(
            (
                f"PRDC N={n_prdc} d={d_prdc} k=5: {key}",
                "prdc 0.2",
                ours_prdc[1],
                None if ref_prdc is None else ref_prdc[1],
                ours_prdc[0][key],
                None if ref_prdc is None else float(ref_prdc[0][key]),
            )
        )
    print(f"  done: PRDC N={n_prdc}", flush=True)

    # ---- ours only (no maintained reference package)
    auth = _timed(lambda: authenticity(pr, pf))
    rows.append((f"authenticity N={n_prdc} d={d_prdc}", "-", auth[1], None, auth[0], None))
    n_dc = n_prdc // 2
    train, test, gen = (
        on_dev(rng.standard_normal((n, 64), dtype=np.float32)) for n in (2 * n_dc, n_dc, n_dc)
    )
    dc = _timed(lambda: data_copying(train, test, gen, num_cells=20))
    rows.append((f"data_copying C_T {2 * n_dc}/{n_dc}/{n_dc} d=64", "-", dc[1], None, dc[0], None))
    n_img, size = (100, 32) if args.quick else (1000, 64)
    imgs = rng.integers(0, 256, (2, n_img, 3, size, size), dtype=np.uint8)
    swd = _timed(lambda: sliced_wasserstein(imgs[0], imgs[1], device=dev)["swd_mean"])
    rows.append((f"SWD {n_img} imgs 3x{size}x{size}", "-", swd[1], None, swd[0], None))

    print()
    print(_machine())
    print(f"our device: {dev}")
    header = (
        f"| {'metric':<40} | {'reference':<20} | {'ours s':>7} | {'ref s':>7} | {'speed-up':>8} "
        f"| {'ours value':>12} | {'ref value':>12} | {'rel diff':>8} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, ref_name, t_ours, t_ref, v_ours, v_ref in rows:
        speed = f"{t_ref / t_ours:7.1f}x" if t_ref is not None else "      -"
        ref_t = f"{t_ref:7.2f}" if t_ref is not None else "      -"
        ref_v = f"{v_ref:12.6g}" if v_ref is not None else "           -"
        rel = (
            f"{abs(v_ours - v_ref) / max(abs(v_ref), 1e-30):8.1e}"
            if v_ref is not None
            else "     -"
        )
        print(
            f"| {name:<40} | {ref_name:<20} | {t_ours:7.2f} | {ref_t} | {speed:>8} "
            f"| {v_ours:12.6g} | {ref_v} | {rel:>8} |"
        )


if __name__ == "__main__":
    main()
