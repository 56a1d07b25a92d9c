"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al.,
2018, "Progressive Growing of GANs", appendix D), following their
``metrics/sliced_wasserstein.py``:

* build a Laplacian pyramid of each uint8 image in float ([0, 255] scale,
  5x5 binomial filter, mirror padding, as cv2.pyrDown/pyrUp); the coarsest
  level is the Gaussian residual;
* per level, cut ``patches_per_image`` random 7x7 neighbourhoods per image
  (centres drawn so patches lie fully inside);
* normalise each set's descriptors per channel to zero mean / unit std
  (each set with its own statistics, as ProGAN does - so a global
  brightness/contrast change of the coarsest level is partly normalised
  away; the metric targets local structure);
* per level, ``dir_repeats`` x ``dirs_per_repeat`` random unit directions;
  project, sort, mean absolute difference of sorted projections, averaged
  over directions and repeats.

Values are multiplied by 1e3 (ProGAN's "SWDx1e3" numbers). Levels: the
finest is the image itself; coarser levels halve the resolution and are kept
while their smaller side is >= 16 (ProGAN's rule) and >= the patch size.
Unlike ProGAN, images smaller than 16 (e.g. 8x8) still get one level - the
full-resolution one - as long as they are at least 7x7. Keys are
``swd_<size>`` (size = smaller side of the level) and ``swd_mean``.

All randomness (patch positions, directions, subsampling) comes from
``torch.Generator``s seeded from ``seed``; ProGAN's draws are unseeded. The
i-th image of both sets gets the same patch positions (common random
numbers): each set is still a uniform sample of its patches, but identical
sets give exactly 0 and position-sampling noise largely cancels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._stats import ArrayLike, DeviceLike, resolve_device

__all__ = ["sliced_wasserstein", "laplacian_pyramid"]

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_GAUSS = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


def _filter(x: torch.Tensor, scale: float) -> torch.Tensor:
    c = x.shape[1]
    w = (_GAUSS * scale).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), w, groups=c)


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _filter(x, 1.0)[:, :, ::2, ::2]


def _pyr_up(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _filter(up, 4.0)[:, :, : shape[0], : shape[1]]


def _as_uint8(x: ArrayLike, name: str) -> torch.Tensor:
    """Images stay uint8 (on their device) until a batch is processed."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.ascontiguousarray(x)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    if t.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 images in [0, 255], got {t.dtype}")
    if t.ndim != 4:
        raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(t.shape)}")
    return t


def _num_levels(h: int, w: int, patch_size: int, min_resolution: int) -> int:
    res = min(h, w)
    if res < patch_size:
        raise ValueError(f"images ({h}x{w}) are smaller than the {patch_size}x{patch_size} patch")
    levels = 1
    res = (res + 1) // 2  # pyrDown keeps ceil(size / 2)
    while res >= max(min_resolution, patch_size):
        levels += 1
        res = (res + 1) // 2
    return levels


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of float images (N, C, H, W), finest level first."""
    pyramid = [images]
    for _ in range(1, num_levels):
        pyramid.append(_pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - _pyr_up(pyramid[-1], tuple(pyramid[-2].shape[2:]))
    return pyramid


def _patches(
    level: torch.Tensor, patch_size: int, per_image: int, gen: torch.Generator
) -> torch.Tensor:
    """(N * per_image, C, P, P) random patches from (N, C, H, W)."""
    n, c, h, w = level.shape
    half = patch_size // 2
    cy = torch.randint(half, h - half, (n, per_image), generator=gen).to(level.device)
    cx = torch.randint(half, w - half, (n, per_image), generator=gen).to(level.device)
    offs = torch.arange(-half, half + 1, device=level.device)
    ys = (cy[..., None] + offs)[..., :, None]  # (n, k, P, 1)
    xs = (cx[..., None] + offs)[..., None, :]  # (n, k, 1, P)
    flat = (ys * w + xs).reshape(n, 1, -1)  # (n, 1, k*P*P)
    out = level.reshape(n, c, h * w).gather(2, flat.expand(n, c, -1))
    out = out.reshape(n, c, per_image, patch_size, patch_size).transpose(1, 2)
    return out.reshape(n * per_image, c, patch_size, patch_size)


@dataclass(frozen=True)
class _Cutter:
    """How patches are cut: per batch of images, every pyramid level's `per_image` random
    patches, positions drawn from `seed` in a fixed order. Every pass over a set cuts the
    same patches, so descriptors are recomputed instead of held."""

    device: torch.device
    num_levels: int
    patch_size: int
    per_image: int
    batch_size: int
    seed: int

    def passes(self, images: torch.Tensor) -> Iterator[tuple[int, int, torch.Tensor]]:
        """(level, first descriptor row, (b * per_image, C, P, P) patches) of every batch."""
        gen = torch.Generator().manual_seed(self.seed)
        for start in range(0, images.shape[0], self.batch_size):
            batch = images[start : start + self.batch_size].to(device=self.device, dtype=torch.float32)
            for lvl, level in enumerate(laplacian_pyramid(batch, self.num_levels)):
                yield lvl, start * self.per_image, _patches(level, self.patch_size, self.per_image, gen)

    def level_stats(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level, the per-channel mean and std (population) of all descriptors, in one
        streamed pass (sums in float64)."""
        sums: dict[int, torch.Tensor] = {}  # per level: (2, C) sum and sum of squares
        count: dict[int, int] = {}
        for lvl, _, p in self.passes(images):
            x = p.double()
            s = torch.stack([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))])
            sums[lvl] = sums[lvl] + s if lvl in sums else s
            count[lvl] = count.get(lvl, 0) + p.shape[0] * p.shape[2] * p.shape[3]
        out = []
        for lvl in range(self.num_levels):
            mean, sq = sums[lvl] / count[lvl]
            out.append((mean.float(), (sq - mean * mean).clamp_min(0).sqrt().float().clamp_min(1e-12)))
        return out

    def sorted_projections(self, images: torch.Tensor, stats: list[tuple[torch.Tensor, torch.Tensor]],
                           dirs: list[torch.Tensor], keep: list[torch.Tensor | None]) -> list[torch.Tensor]:
        """Per level, the normalised descriptors of all images projected on that level's
        directions `dirs[lvl]` (D, B), the rows `keep[lvl]` (a subsample) or all, sorted per
        column: one streamed pass, holding only the (n, B) projections."""
        n = images.shape[0] * self.per_image
        proj = [torch.empty(n, d.shape[1], device=d.device) for d in dirs]
        for lvl, row, p in self.passes(images):
            mean, std = stats[lvl]
            desc = ((p - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)).reshape(p.shape[0], -1)
            proj[lvl][row : row + p.shape[0]] = desc @ dirs[lvl]
        out = []
        for pr, k in zip(proj, keep, strict=True):
            pr = pr if k is None else pr[k]
            if pr.device.type == "cpu":  # numpy's column sort is ~3x faster than torch.sort on CPU
                pr.numpy().sort(axis=0)
            else:
                pr = torch.sort(pr, dim=0).values
            out.append(pr)
        return out


def sliced_wasserstein(
    real_images: ArrayLike,
    fake_images: ArrayLike,
    *,
    patch_size: int = 7,
    patches_per_image: int = 128,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    min_resolution: int = 16,
    seed: int = 0,
    batch_size: int = 256,
    device: DeviceLike = None,
    memory_budget: int = 1 << 30,
) -> dict[str, float]:
    """SWD x 1e3 per pyramid level and their mean, between two uint8 image sets.

    ``real_images`` / ``fake_images``: (N, C, H, W) uint8 (any C; same C, H, W
    for both). If the sets differ in size the larger set's descriptors are
    randomly subsampled to the smaller count, since sorted-projection matching
    needs equal counts.

    Memory: descriptors (N x patches_per_image x C x 49 floats per level, 3.8 GB
    per set and level for 50k RGB images) are never held. One streamed pass per
    set gives each level's normalisation statistics; then the directions are
    taken in blocks, each block one more pass over both sets that recomputes the
    patches batch by batch (the same seeded positions) and keeps only their
    projections on the block: about ``memory_budget`` bytes of projections (and
    sorting space) at a time, whatever N. A budget that holds every direction
    makes it one pass per set.
    """
    dev = resolve_device(real_images, device)
    real = _as_uint8(real_images, "real_images")
    fake = _as_uint8(fake_images, "fake_images")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"image shapes differ: {tuple(real.shape[1:])} vs {tuple(fake.shape[1:])}")
    if patch_size % 2 != 1:
        raise ValueError("patch_size must be odd")
    c, h, w = real.shape[1], real.shape[2], real.shape[3]
    num_levels = _num_levels(h, w, patch_size, min_resolution)
    # Common random numbers: image i of both sets gets the same patch positions (both
    # sets' passes use `seed`), so identical sets give exactly 0 and position noise cancels.
    cut = _Cutter(dev, num_levels, patch_size, patches_per_image, batch_size, seed)
    stats_real, stats_fake = cut.level_stats(real), cut.level_stats(fake)

    # every other random draw, in a fixed order from seed + 1: per level the subsample of
    # the larger set's descriptors, then the directions of each repeat
    n_real, n_fake = real.shape[0] * patches_per_image, fake.shape[0] * patches_per_image
    k = min(n_real, n_fake)
    gen = torch.Generator().manual_seed(seed + 1)
    keep_real: list[torch.Tensor | None] = []
    keep_fake: list[torch.Tensor | None] = []
    dirs: list[torch.Tensor] = []
    dim = c * patch_size * patch_size
    for _ in range(num_levels):
        keep_real.append(torch.randperm(n_real, generator=gen)[:k].to(dev) if n_real > k else None)
        keep_fake.append(torch.randperm(n_fake, generator=gen)[:k].to(dev) if n_fake > k else None)
        d = [torch.randn(dim, dirs_per_repeat, generator=gen) for _ in range(dir_repeats)]
        dirs.append(torch.cat([v / v.norm(dim=0, keepdim=True) for v in d], dim=1).to(dev))

    # directions per pass: both sets' projections of every level, and room to sort them
    total = dir_repeats * dirs_per_repeat
    per_dir = 3 * 4 * num_levels * (n_real + n_fake)
    block = int(max(1, min(total, memory_budget // per_dir)))
    diff_sum = [0.0] * num_levels
    for j in range(0, total, block):
        cols = [d[:, j : j + block] for d in dirs]
        a = cut.sorted_projections(real, stats_real, cols, keep_real)
        b = cut.sorted_projections(fake, stats_fake, cols, keep_fake)
        for lvl in range(num_levels):
            diff_sum[lvl] += float((a[lvl] - b[lvl]).abs().sum(dtype=torch.float64))
        del a, b

    out: dict[str, float] = {}
    size = min(h, w)
    for lvl in range(num_levels):
        # the mean over descriptors and directions (every repeat has as many) x 1e3
        out[f"swd_{size}"] = 1e3 * diff_sum[lvl] / (k * total)
        size = (size + 1) // 2
    out["swd_mean"] = sum(out.values()) / len(out)
    return out
