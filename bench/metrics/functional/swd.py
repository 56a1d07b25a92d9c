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


def _normalise(desc: torch.Tensor) -> torch.Tensor:
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-12)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def _descriptors(
    images: torch.Tensor,
    device: torch.device,
    num_levels: int,
    patch_size: int,
    per_image: int,
    batch_size: int,
    gen: torch.Generator,
) -> list[torch.Tensor]:
    per_level: list[list[torch.Tensor]] = [[] for _ in range(num_levels)]
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device=device, dtype=torch.float32)
        for lvl, level in enumerate(laplacian_pyramid(batch, num_levels)):
            per_level[lvl].append(_patches(level, patch_size, per_image, gen))
    return [_normalise(torch.cat(chunks)) for chunks in per_level]


def _sorted_projections(desc: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    proj = desc @ dirs
    if proj.device.type == "cpu":
        # numpy's column sort is ~3x faster than torch.sort on CPU here
        arr = proj.numpy()
        arr.sort(axis=0)
        return proj
    return torch.sort(proj, dim=0).values


def _swd(a: torch.Tensor, b: torch.Tensor, repeats: int, dirs: int, gen: torch.Generator) -> float:
    results = []
    for _ in range(repeats):
        d = torch.randn(a.shape[1], dirs, generator=gen).to(a)
        d /= d.norm(dim=0, keepdim=True)
        diff = _sorted_projections(a, d) - _sorted_projections(b, d)
        results.append(float(diff.abs().mean(dtype=torch.float64)))
    return sum(results) / len(results)


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
) -> dict[str, float]:
    """SWD x 1e3 per pyramid level and their mean, between two uint8 image sets.

    ``real_images`` / ``fake_images``: (N, C, H, W) uint8 (any C; same C, H, W
    for both). If the sets differ in size the larger set's descriptors are
    randomly subsampled to the smaller count, since sorted-projection matching
    needs equal counts. Images are processed ``batch_size`` at a time; the
    descriptors themselves take N x patches_per_image x C x 49 floats per level.
    """
    dev = resolve_device(real_images, device)
    real = _as_uint8(real_images, "real_images")
    fake = _as_uint8(fake_images, "fake_images")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"image shapes differ: {tuple(real.shape[1:])} vs {tuple(fake.shape[1:])}")
    if patch_size % 2 != 1:
        raise ValueError("patch_size must be odd")
    h, w = real.shape[2], real.shape[3]
    num_levels = _num_levels(h, w, patch_size, min_resolution)
    # Common random numbers: image i of both sets gets the same patch
    # positions, so identical sets give exactly 0 and position noise cancels.
    args = (dev, num_levels, patch_size, patches_per_image, batch_size)
    desc_real = _descriptors(real, *args, torch.Generator().manual_seed(seed))
    desc_fake = _descriptors(fake, *args, torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed + 1)

    out: dict[str, float] = {}
    size = min(h, w)
    for a, b in zip(desc_real, desc_fake, strict=True):
        if a.shape[0] != b.shape[0]:
            k = min(a.shape[0], b.shape[0])
            a = a[torch.randperm(a.shape[0], generator=gen)[:k].to(dev)] if a.shape[0] > k else a
            b = b[torch.randperm(b.shape[0], generator=gen)[:k].to(dev)] if b.shape[0] > k else b
        out[f"swd_{size}"] = 1e3 * _swd(a, b, dir_repeats, dirs_per_repeat, gen)
        size = (size + 1) // 2
    out["swd_mean"] = sum(out.values()) / len(out)
    return out
