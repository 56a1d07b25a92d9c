"""FrechetReference's cached-factor path against pytorch-fid's algorithm (scipy sqrtm).

The per-model path (dsygst with the cached Cholesky factor, one eigvalsh) must give
pytorch-fid's value within 1e-6 relative, including near-singular covariances where
sqrtm-based code is fragile.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bench.metrics.functional import FrechetReference

fid_score = pytest.importorskip("pytorch_fid.fid_score")

D = 48


def _pytorch_fid(a: np.ndarray, b: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's sqrtm(disp=...) deprecation
        try:
            return float(fid_score.calculate_frechet_distance(
                a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))
        except TypeError as err:  # SciPy >= 1.18 removed sqrtm(disp=...)
            if "disp" not in str(err):
                raise
            pytest.skip(f"pytorch-fid is incompatible with this SciPy: {err}")


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((D, D)) / np.sqrt(D)
    offset = rng.uniform(0, 1, D)

    def corr(n: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal((n, D)) * scale) @ mix + offset + shift

    def low_rank(n: int, rank: int, noise: float, shift: float = 0.0) -> np.ndarray:
        basis = rng.standard_normal((rank, D))
        return rng.standard_normal((n, rank)) @ basis + noise * rng.standard_normal((n, D)) + shift

    decay = np.logspace(0, -4, D)  # condition number ~1e10
    return {
        # FID small beside the traces: the cancellation that needs float64 throughout
        "same_law": (corr(1500), corr(1500)),
        "small_shift": (corr(1500), corr(1500, 0.05, 1.02)),
        "near_singular_real": (low_rank(1500, 8, 1e-4), corr(1500, 0.1)),
        "near_singular_fake": (corr(1500), low_rank(1500, 8, 1e-4, 0.1)),
        "both_near_singular": (low_rank(1500, 8, 1e-3), low_rank(1500, 8, 1e-3, 0.2)),
        "ill_conditioned": (corr(1500) * decay, corr(1500, 0.01) * decay),
    }


@pytest.mark.heavy  # scipy sqrtm of pytorch-fid on six covariance pairs: seconds each
@pytest.mark.parametrize("case", list(_cases()))
def test_cached_factor_fid_equals_pytorch_fid(case: str) -> None:
    real, fake = _cases()[case]
    ref = FrechetReference(real.mean(0), np.cov(real, rowvar=False))
    assert ref._lower_f is not None, "the CPU fast path (dsygst on the Cholesky factor) ran"
    expected = _pytorch_fid(real, fake)
    # the same reference scores two models (the cached factor is not consumed by the first).
    # The first has the real covariance and a shifted mean, so FID = D * 0.5^2 exactly; there
    # pytorch-fid's sqrtm of a near-singular product loses digits (1.6e-6 off when the real
    # covariance has rank 8 + 1e-4 noise), the symmetric eigenvalue solve does not.
    assert ref.distance_to_features(real[::-1] + 0.5) == pytest.approx(D * 0.25, rel=1e-8)
    assert ref.distance_to_features(fake) == pytest.approx(expected, rel=1e-6)


def test_fast_path_equals_the_general_product() -> None:
    real, fake = _cases()["small_shift"]
    fast = FrechetReference(real.mean(0), np.cov(real, rowvar=False))
    general = FrechetReference(real.mean(0), np.cov(real, rowvar=False))
    general._lower_f = None  # F^T S F by matmul, as on CUDA
    mu, sigma = fake.mean(0), np.cov(fake, rowvar=False)
    sigma_before = sigma.copy()
    assert fast.distance(mu, sigma) == pytest.approx(general.distance(mu, sigma), rel=1e-12)
    np.testing.assert_array_equal(sigma, sigma_before)  # the caller's matrix is not overwritten


def test_fewer_rows_than_dimensions_take_the_n_by_n_route_with_the_same_values() -> None:
    """N <= d generated rows: FID and its bootstrap from an N x N eigenproblem equal the
    d x d route (FeatureStats + distance) to round-off, and the rank warning still shows."""
    import torch

    from bench.metrics.functional._stats import FeatureStats

    rng = np.random.default_rng(3)
    d = 96
    base = rng.normal(size=(d, d)) / np.sqrt(d)
    ref = FrechetReference.from_features(torch.from_numpy(rng.normal(size=(600, d)) @ base))
    fake = torch.from_numpy(rng.normal(size=(60, d)) @ (1.2 * base) + 0.2)
    with pytest.warns(RuntimeWarning, match="rank-deficient"):
        low = ref.distance_to_features(fake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = ref.distance_to_stats(FeatureStats.from_features(fake))
    assert low == pytest.approx(full, rel=1e-7)
    # the bootstrap: the same resamples through both routes
    boot = ref.bootstrap_distances(fake, 4, seed=5)
    gen = torch.Generator().manual_seed(5)
    n = len(fake)
    for r in range(4):
        counts = torch.bincount(torch.randint(0, n, (n,), generator=gen), minlength=n)
        x = fake.repeat_interleave(counts, dim=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = ref.distance_to_stats(FeatureStats.from_features(x))
        assert boot[r] == pytest.approx(want, rel=1e-7)


def test_fewer_real_rows_than_dimensions_keep_the_rows_with_the_same_values() -> None:
    """N <= d real rows: from_features keeps the centred rows and factors nothing (no eigh of
    the singular covariance); the distances to N <= d and N > d generated rows, and the
    bootstrap, equal the eigh-factor route's (the same statistics given as mu, sigma)."""
    import torch

    from bench.metrics.functional._stats import FeatureStats

    rng = np.random.default_rng(4)
    d = 96
    base = rng.normal(size=(d, d)) / np.sqrt(d)
    real = torch.from_numpy(rng.normal(size=(70, d)) @ base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = FrechetReference.from_features(real)
        general = FrechetReference.from_stats(FeatureStats.from_features(real))
    assert rows._rows is not None and rows._factor is None and rows._lower_f is None
    assert general._rows is None
    a = (real - real.mean(0)).numpy()
    for n in (40, 70, 90, 300):  # fewer, as many, more generated rows than real; more than d
        fake = torch.from_numpy(rng.normal(size=(n, d)) @ (1.1 * base) + 0.1)
        b = (fake - fake.mean(0)).numpy()
        # closed form: tr sqrt(S1 S2) = the nuclear norm of B A^T / sqrt((N1 - 1)(N2 - 1))
        nuclear = np.linalg.svd(b @ a.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (n - 1))
        exact = (float(((real.mean(0) - fake.mean(0)) ** 2).sum()) + (a * a).sum() / (len(a) - 1)
                 + (b * b).sum() / (n - 1) - 2 * nuclear)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = rows.distance_to_features(fake)
            assert got == pytest.approx(exact, rel=1e-8)
            # the eigh route takes square roots of the round-off eigenvalues of the singular
            # covariance (1e-8 relative off the closed form at N = 90, 300)
            assert got == pytest.approx(general.distance_to_features(fake), rel=1e-7)
            assert rows.bootstrap_distances(fake, 3, seed=2) == pytest.approx(
                general.bootstrap_distances(fake, 3, seed=2), rel=1e-7)
    assert rows._factor is None  # never needed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        same = rows.distance_to_features(real)
    assert abs(same) < 1e-9 * rows.trace  # the real rows against themselves
