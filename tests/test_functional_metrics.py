"""Tests of bench.metrics.functional: closed forms, reference packages, conventions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bench.metrics.functional import (
    FeatureStats,
    FrechetReference,
    authenticity,
    data_copying,
    density_coverage,
    fid_from_features,
    frechet_distance,
    inception_score,
    kid,
    laplacian_pyramid,
    mann_whitney_z,
    prdc,
    precision_recall,
    sliced_wasserstein,
)

RTOL = 1e-5
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _correlated(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    """Gaussian features with a non-trivial covariance (like real embeddings)."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return rng.standard_normal((n, d)) @ mix + shift + rng.uniform(0, 1, d)


# ---------------------------------------------------------------- FeatureStats / FID


def test_feature_stats_matches_numpy_and_merges() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1001, 17)) * 3 + 1e4  # large offset: cancellation check
    stats = FeatureStats()
    for start, size in [(0, 1), (1, 300), (301, 7), (308, 693)]:
        stats.update(x[start : start + size])
    assert stats.n == 1001
    np.testing.assert_allclose(stats.mean.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov.numpy(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)
    a = FeatureStats.from_features(x[:500], batch_size=64)
    b = FeatureStats.from_features(torch.from_numpy(x[500:]))
    a.merge(b)
    np.testing.assert_allclose(a.cov.numpy(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)


@pytest.mark.heavy  # 2,048-dimensional covariances
def test_frechet_closed_form_mean_shift_2048() -> None:
    d = 2048
    fd = frechet_distance(np.zeros(d), np.eye(d), np.ones(d), np.eye(d))
    assert fd == pytest.approx(2048.0, rel=1e-9)


@pytest.mark.parametrize("factor", ["auto", "eigh"])
def test_frechet_closed_form_scaled_covariance(factor: str) -> None:
    d = 256
    ref = FrechetReference(np.zeros(d), np.eye(d), factor=factor)
    assert ref.distance(np.zeros(d), 4 * np.eye(d)) == pytest.approx(d, rel=1e-9)


def test_frechet_reference_cached_equals_direct_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    a, b = _correlated(rng, 2000, 64), _correlated(rng, 2000, 64, 0.3)
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    direct = frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov)
    ref = FrechetReference.from_stats(sa)
    assert ref.distance_to_features(b) == pytest.approx(direct, rel=1e-10)
    assert fid_from_features(b, a) == pytest.approx(direct, rel=1e-8)
    eigh = FrechetReference(sa.mean, sa.cov, factor="eigh").distance_to_stats(sb)
    assert eigh == pytest.approx(direct, rel=1e-9)


def test_fid_matches_torch_fidelity() -> None:
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    rng = np.random.default_rng(2)
    a, b = _correlated(rng, 3000, 256), _correlated(rng, 3000, 256, 0.05)
    ours = fid_from_features(a, b)
    ref = metric_fid.fid_statistics_to_metric(
        metric_fid.fid_features_to_statistics(torch.from_numpy(a)),
        metric_fid.fid_features_to_statistics(torch.from_numpy(b)),
        False,
    )["frechet_inception_distance"]
    assert ours == pytest.approx(ref, rel=RTOL)


def test_fid_matches_pytorch_fid() -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(3)
    a, b = _correlated(rng, 3000, 256), _correlated(rng, 3000, 256, 0.05)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's sqrtm(disp=...) deprecation
            ref = fid_score.calculate_frechet_distance(
                a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
            )
    except TypeError as err:  # SciPy >= 1.18 removed sqrtm(disp=...), which pytorch-fid passes
        if "disp" not in str(err):
            raise
        pytest.skip(f"pytorch-fid is incompatible with this SciPy: {err}")
    assert fid_from_features(a, b) == pytest.approx(ref, rel=RTOL)


def test_fid_rank_deficient_warns_and_stays_real() -> None:
    rng = np.random.default_rng(4)
    d = 256
    a, b = _correlated(rng, 100, d), _correlated(rng, 120, d, 0.1)  # N < d
    with pytest.warns(RuntimeWarning, match="rank-deficient"):
        ours = fid_from_features(a, b)
    assert np.isfinite(ours) and ours > 0
    sa, sb = (a.mean(0), np.cov(a, rowvar=False)), (b.mean(0), np.cov(b, rowvar=False))
    eigh = FrechetReference(*sa, factor="eigh").distance(*sb)
    assert ours == pytest.approx(eigh, rel=1e-7)
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    ref = metric_fid.fid_statistics_to_metric(
        {"mu": sa[0], "sigma": sa[1]}, {"mu": sb[0], "sigma": sb[1]}, False
    )["frechet_inception_distance"]
    assert ours == pytest.approx(ref, rel=1e-4)


@needs_cuda
@pytest.mark.gpu
def test_fid_on_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(5)
    a, b = _correlated(rng, 2000, 128), _correlated(rng, 2000, 128, 0.1)
    cpu = fid_from_features(a, b)
    gpu = fid_from_features(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda())
    assert gpu == pytest.approx(cpu, rel=1e-8)


# ---------------------------------------------------------------- KID


def _tf_kid(
    a: np.ndarray, b: np.ndarray, subsets: int, size: int, seed: int, **kernel: float
) -> dict:
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    return metric_kid.kid_features_to_metric(
        torch.from_numpy(a),
        torch.from_numpy(b),
        kid_subsets=subsets,
        kid_subset_size=size,
        kid_kernel="poly",
        kid_kernel_poly_degree=int(kernel.get("degree", 3)),
        kid_kernel_poly_gamma=kernel.get("gamma"),
        kid_kernel_poly_coef0=kernel.get("coef0", 1),
        rng_seed=seed,
        verbose=False,
    )


def test_kid_matches_torch_fidelity_same_subsets() -> None:
    rng = np.random.default_rng(6)
    a, b = _correlated(rng, 1500, 128), _correlated(rng, 1200, 128, 0.1)
    ours = kid(a, b, num_subsets=20, subset_size=400, seed=7)
    ref = _tf_kid(a, b, 20, 400, 7)
    assert ours["kid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=RTOL)
    assert ours["kid_std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=RTOL)


@pytest.mark.parametrize(
    "kernel", [{"degree": 2, "gamma": 0.01, "coef0": 0.5}, {"degree": 3, "coef0": -1.0}]
)
def test_kid_other_kernel_parameters_match_torch_fidelity(kernel: dict) -> None:
    # coef0 < 0 takes the non-augmented code path
    rng = np.random.default_rng(24)
    a, b = _correlated(rng, 600, 64), _correlated(rng, 600, 64, 0.2)
    ours = kid(a, b, num_subsets=5, subset_size=300, seed=2, **kernel)
    ref = _tf_kid(a, b, 5, 300, 2, **kernel)
    assert ours["kid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=RTOL)


def test_kid_clamps_subset_size_with_warning() -> None:
    rng = np.random.default_rng(8)
    a, b = _correlated(rng, 300, 32), _correlated(rng, 250, 32, 0.2)
    with pytest.warns(RuntimeWarning, match="exceeds half the sample count.*clamped to 125"):
        ours = kid(a, b, num_subsets=5, subset_size=1000, seed=1)
    ref = _tf_kid(a, b, 5, 125, 1)
    assert ours["kid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=RTOL)


@pytest.mark.heavy
def test_kid_interval_has_a_width_when_the_sample_is_smaller_than_a_subset() -> None:
    """Two samples of one distribution, smaller than the default subset: subsets of half the
    sample vary, so the spread over them is an interval that holds the true 0 (subsets as
    large as the sample gave one of zero width beside it)."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    with pytest.warns(RuntimeWarning):
        _, mmds = kid(a, b, num_subsets=100, subset_size=1000, per_subset=True)
    lo, hi = np.percentile(mmds, [2.5, 97.5])
    assert lo < 0 < hi and hi - lo > 1e-3


@pytest.mark.heavy
def test_kid_near_zero_for_same_distribution_and_seeded() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2000, 64)), rng.standard_normal((2000, 64))
    same = kid(a, b, num_subsets=10, subset_size=500)
    shifted = kid(a, b + 0.3, num_subsets=10, subset_size=500)
    assert abs(same["kid_mean"]) < 3 * same["kid_std"] + 1e-3
    assert shifted["kid_mean"] > 10 * abs(same["kid_mean"])
    assert kid(a, b, num_subsets=10, subset_size=500) == same  # seeded


# ---------------------------------------------------------------- Inception Score


@pytest.mark.parametrize("shuffle", [False, True])
def test_inception_score_matches_torch_fidelity(shuffle: bool) -> None:
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    rng = np.random.default_rng(10)
    logits = rng.standard_normal((1000, 1008)) * 4
    ours = inception_score(logits, splits=10, shuffle=shuffle, seed=2020)
    ref = metric_isc.isc_features_to_metric(torch.from_numpy(logits), 10, shuffle, 2020)
    assert ours["is_mean"] == pytest.approx(ref["inception_score_mean"], rel=RTOL)
    assert ours["is_std"] == pytest.approx(ref["inception_score_std"], rel=RTOL)


def test_inception_score_probs_and_closed_forms() -> None:
    rng = np.random.default_rng(11)
    logits = torch.from_numpy(rng.standard_normal((200, 50)) * 2)
    from_probs = inception_score(torch.softmax(logits, 1), splits=4, inputs="probs")
    assert from_probs["is_mean"] == pytest.approx(
        inception_score(logits, splits=4)["is_mean"], rel=1e-9
    )
    # Confident, evenly spread over C classes -> IS = C; uniform predictions -> 1.
    one_hot = np.eye(20)[np.arange(400) % 20]
    assert inception_score(one_hot, splits=2, inputs="probs")["is_mean"] == pytest.approx(20.0)
    assert inception_score(np.zeros((100, 20)), splits=2)["is_mean"] == pytest.approx(1.0)
    # Saturated logits underflow to exact zeros in p and q: still finite.
    assert inception_score(one_hot * 1e4, splits=2)["is_mean"] == pytest.approx(20.0)


# ---------------------------------------------------------------- PRDC


def test_prdc_matches_prdc_package_tie_free() -> None:
    prdc_pkg = pytest.importorskip("prdc")
    rng = np.random.default_rng(12)
    real = rng.standard_normal((800, 64))
    fake = rng.standard_normal((700, 64)) * 1.1 + 0.15
    ref = prdc_pkg.compute_prdc(real, fake, nearest_k=5)
    for chunk in (None, 37):
        ours = prdc(real, fake, k=5, chunk_size=chunk)
        for key in ("precision", "recall", "density", "coverage"):
            assert ours[key] == pytest.approx(float(ref[key]), rel=RTOL), key


def test_prdc_wrappers_consistent() -> None:
    rng = np.random.default_rng(13)
    real, fake = rng.standard_normal((400, 16)), rng.standard_normal((300, 16)) + 0.3
    full3, full5 = prdc(real, fake, k=3), prdc(real, fake, k=5)
    pr = precision_recall(torch.from_numpy(real).float(), torch.from_numpy(fake).float())
    assert pr == pytest.approx({"precision": full3["precision"], "recall": full3["recall"]})
    assert density_coverage(real, fake) == {
        "density": full5["density"],
        "coverage": full5["coverage"],
    }


def test_prdc_identical_sets_use_inclusive_balls() -> None:
    rng = np.random.default_rng(14)
    x = rng.standard_normal((300, 8))
    out = prdc(x, x.copy(), k=5)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    assert out["density"] >= 1.0


def test_precision_recall_convention() -> None:
    """Precision falls when fakes leave the real support; recall falls when
    fakes cover only part of it (torch-fidelity once had these swapped)."""
    rng = np.random.default_rng(15)
    real = rng.standard_normal((1000, 8))
    good = precision_recall(real, rng.standard_normal((1000, 8)))
    outside = precision_recall(real, rng.standard_normal((1000, 8)) + 3.0)
    pool = rng.standard_normal((8000, 8))
    partial = precision_recall(real, pool[pool[:, 0] > 1.0][:1000])  # one tail only
    assert outside["precision"] < 0.5 * good["precision"]
    assert outside["recall"] < 0.5 * good["recall"]
    assert partial["recall"] < 0.5 * good["recall"]
    assert partial["precision"] > 0.85 * good["precision"]


# ---------------------------------------------------------------- SWD


def _smooth_images(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    f, ph = rng.uniform(1, 4, (n, 3, 1, 1)), rng.uniform(0, 6, (n, 3, 1, 1))
    img = np.sin(2 * np.pi * f * (xx * np.cos(ph) + yy * np.sin(ph)) + ph)
    return np.clip(127.5 + 100 * img, 0, 255).astype(np.uint8)


@pytest.mark.heavy
def test_swd_identical_zero_and_monotone_in_noise() -> None:
    rng = np.random.default_rng(16)
    a = _smooth_images(rng, 120)
    same = sliced_wasserstein(a, a)
    assert set(same) == {"swd_32", "swd_16", "swd_mean"}
    assert same["swd_mean"] == pytest.approx(0.0, abs=1e-9)
    means = []
    for sigma in (5, 10, 20, 40):
        noisy = np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)
        means.append(sliced_wasserstein(a, noisy)["swd_mean"])
    assert all(lo < hi for lo, hi in zip(means, means[1:], strict=False)), means
    shifted = np.roll(_smooth_images(rng, 120) // 2 + 60, 3, axis=-1)
    assert sliced_wasserstein(a, shifted)["swd_mean"] > means[0]


def test_swd_small_images_and_levels() -> None:
    rng = np.random.default_rng(17)
    a, b = _smooth_images(rng, 64, 8), _smooth_images(rng, 48, 8)
    out = sliced_wasserstein(a, b)  # unequal counts: subsampled
    assert list(out) == ["swd_8", "swd_mean"] and out["swd_8"] > 0
    assert list(sliced_wasserstein(a[:, :, :7, :7], a[:, :, :7, :7])) == ["swd_7", "swd_mean"]
    big = _smooth_images(rng, 4, 64)
    assert list(sliced_wasserstein(big, big, patches_per_image=8)) == [
        "swd_64",
        "swd_32",
        "swd_16",
        "swd_mean",
    ]
    assert sliced_wasserstein(torch.from_numpy(a), b) == out
    with pytest.raises(ValueError):
        sliced_wasserstein(a[:, :, :6, :6], a[:, :, :6, :6])
    with pytest.raises(TypeError):
        sliced_wasserstein(a.astype(np.float32), b.astype(np.float32))


def test_laplacian_pyramid_reconstructs() -> None:
    from bench.metrics.functional.swd import _pyr_up

    rng = np.random.default_rng(18)
    img = torch.from_numpy(_smooth_images(rng, 2, 32)).float()
    pyr = laplacian_pyramid(img, 3)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8]
    rec = pyr[-1]
    for lap in reversed(pyr[:-1]):
        rec = lap + _pyr_up(rec, tuple(lap.shape[2:]))
    torch.testing.assert_close(rec, img, rtol=0, atol=1e-3)


def test_laplacian_pyramid_matches_progan_scipy_version() -> None:
    """ProGAN builds the pyramid with scipy.ndimage.convolve(mode="mirror")."""
    from scipy.ndimage import convolve

    g = np.float32([1, 4, 6, 4, 1])
    g = (np.outer(g, g) / 256.0)[None, None]

    def pyr_down(x: np.ndarray) -> np.ndarray:
        return convolve(x, g, mode="mirror")[:, :, ::2, ::2]

    def pyr_up(x: np.ndarray) -> np.ndarray:
        res = np.zeros(x.shape[:2] + (x.shape[2] * 2, x.shape[3] * 2), x.dtype)
        res[:, :, ::2, ::2] = x
        return convolve(res, g * 4.0, mode="mirror")

    rng = np.random.default_rng(23)
    img = rng.integers(0, 256, (2, 3, 32, 32)).astype(np.float32)
    ref = [img]
    for _ in range(2):
        ref.append(pyr_down(ref[-1]))
        ref[-2] = ref[-2] - pyr_up(ref[-1])
    ours = laplacian_pyramid(torch.from_numpy(img), 3)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-3)


# ---------------------------------------------------------------- authenticity


def _authenticity_brute_force(train: np.ndarray, fake: np.ndarray) -> float:
    d_tt = np.linalg.norm(train[:, None] - train[None], axis=-1)
    np.fill_diagonal(d_tt, np.inf)
    r = d_tt.min(1)
    d_ft = np.linalg.norm(fake[:, None] - train[None], axis=-1)
    nn = d_ft.argmin(1)
    return float(np.mean(d_ft[np.arange(len(fake)), nn] > r[nn]))


def test_authenticity_matches_brute_force() -> None:
    rng = np.random.default_rng(19)
    train = rng.standard_normal((300, 6))
    fake = np.concatenate([rng.standard_normal((150, 6)), train[:50] + 0.01])
    assert authenticity(train, fake, chunk_size=17) == pytest.approx(
        _authenticity_brute_force(train, fake), abs=1e-12
    )


def test_authenticity_copies_and_independent() -> None:
    rng = np.random.default_rng(20)
    train = rng.standard_normal((2000, 16))
    assert authenticity(train, train[rng.permutation(2000)[:500]]) == 0.0
    # Independent draws: 0.70 at d=16 (and ~0.9 at d=512) in our checks.
    assert authenticity(train, rng.standard_normal((1000, 16))) > 0.6


# ---------------------------------------------------------------- data copying


def test_mann_whitney_z_direction() -> None:
    rng = np.random.default_rng(21)
    q, p = rng.random(40), rng.random(60)
    q[:5] = p[:5]  # some ties
    u = (q[:, None] > p[None]).sum() + 0.5 * (q[:, None] == p[None]).sum()
    expected = (u - 40 * 60 / 2) / np.sqrt(40 * 60 * 101 / 12)
    assert mann_whitney_z(q, p) == pytest.approx(expected, rel=1e-12)
    assert mann_whitney_z(p * 0.1, p) < 0


def test_data_copying_sign_convention() -> None:
    rng = np.random.default_rng(22)
    d = 16
    train, test = rng.standard_normal((4000, d)), rng.standard_normal((1500, d))
    copies = train[rng.choice(4000, 1500, replace=False)] + 0.02 * rng.standard_normal((1500, d))
    independent = rng.standard_normal((1500, d))
    far = 1.3 * rng.standard_normal((1500, d))
    assert data_copying(train, test, copies, num_cells=10) < -5
    assert abs(data_copying(train, test, independent, num_cells=10)) < 2
    assert data_copying(train, test, far, num_cells=10) > 3


def _swd_held(a: np.ndarray, b: np.ndarray, seed: int = 0, per_image: int = 128,
              repeats: int = 4, dirs: int = 128, batch: int = 256) -> dict[str, float]:
    """SWD the way ProGAN computes it: every level's descriptors of both sets held in
    memory (float64 here), normalised per channel, projected, sorted, compared. Patches and
    random draws as bench's (same seeds, same order), so only the streaming differs."""
    from bench.metrics.functional.swd import _num_levels, _patches, laplacian_pyramid

    levels = _num_levels(a.shape[2], a.shape[3], 7, 16)

    def descriptors(x: np.ndarray) -> list[np.ndarray]:
        gen, per = torch.Generator().manual_seed(seed), [[] for _ in range(levels)]
        for s in range(0, len(x), batch):
            pyr = laplacian_pyramid(torch.from_numpy(x[s : s + batch]).float(), levels)
            for lvl, level in enumerate(pyr):
                per[lvl].append(_patches(level, 7, per_image, gen).double().numpy())
        out = []
        for chunks in per:
            d = np.concatenate(chunks)
            d = (d - d.mean(axis=(0, 2, 3), keepdims=True)) / d.std(axis=(0, 2, 3), keepdims=True)
            out.append(d.reshape(len(d), -1))
        return out

    da, db = descriptors(a), descriptors(b)
    gen = torch.Generator().manual_seed(seed + 1)
    out, size = {}, min(a.shape[2:])
    for x, y in zip(da, db, strict=True):
        k = min(len(x), len(y))
        x = x[torch.randperm(len(x), generator=gen)[:k].numpy()] if len(x) > k else x
        y = y[torch.randperm(len(y), generator=gen)[:k].numpy()] if len(y) > k else y
        vals = []
        for _ in range(repeats):
            d = torch.randn(x.shape[1], dirs, generator=gen).double().numpy()
            d /= np.linalg.norm(d, axis=0, keepdims=True)
            vals.append(np.abs(np.sort(x @ d, axis=0) - np.sort(y @ d, axis=0)).mean())
        out[f"swd_{size}"] = 1e3 * float(np.mean(vals))
        size = (size + 1) // 2
    out["swd_mean"] = float(np.mean(list(out.values())))
    return out


@pytest.mark.heavy  # SWD over many projection blocks: tens of seconds
def test_swd_streamed_equals_held_descriptors_and_the_budget_only_changes_passes(monkeypatch):
    """Descriptors are never held (recomputed per block of directions, bounded by
    `memory_budget`); the result is the held computation's, whatever the budget."""
    from bench.metrics.functional import swd as swd_mod

    rng = np.random.default_rng(18)
    a = _smooth_images(rng, 300)
    b = np.clip(_smooth_images(rng, 260) + rng.normal(0, 12, (260, 3, 32, 32)), 0, 255).astype(np.uint8)
    held = _swd_held(a, b)
    blocks: list[int] = []
    project = swd_mod._Cutter.sorted_projections

    def counting(self, images, stats, cols, keep):
        blocks.append(cols[0].shape[1])
        return project(self, images, stats, cols, keep)

    monkeypatch.setattr(swd_mod._Cutter, "sorted_projections", counting)
    roomy = sliced_wasserstein(a, b)  # 1 GiB: every direction in one pass per set
    assert blocks == [512, 512]
    assert roomy == pytest.approx(held, rel=1e-5)
    blocks.clear()
    per_dir = 3 * 4 * 2 * (300 + 260) * 128  # bytes per direction: 2 levels, both sets
    tight = sliced_wasserstein(a, b, memory_budget=40 * per_dir)
    assert max(blocks) == 40 and sum(blocks) == 2 * 512  # 13 passes per set
    assert tight == pytest.approx(roomy, rel=1e-6)
