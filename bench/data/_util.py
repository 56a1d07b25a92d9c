"""Helpers shared by the file-backed dataset sources (torchvision sets, image folders, npz).

They live apart from `base.py` so that the contract stays small: these are conveniences
of reading data, not part of what a Dataset is.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import BenchError


def limit_per_class(y: np.ndarray, max_per_class: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices keeping at most `max_per_class` items of each class.

    A seeded per-class permutation rather than "the first k": files are often ordered by
    something (acquisition date, source), and a prefix would inherit that bias. The same
    labels and seed always give the same subset.
    """
    if max_per_class is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) > max_per_class:
            idx = np.sort(rng.choice(idx, size=max_per_class, replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.arange(0)


def resize_uint8(x: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to (N, C, size, size), in chunks so a large set never needs
    a full float copy; antialiased when shrinking (a plain bilinear shrink aliases)."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2:])
    out = []
    for i in range(0, x.shape[0], chunk):
        xb = F.interpolate(x[i : i + chunk].float(), size=(size, size), mode="bilinear",
                           align_corners=False, antialias=shrink)
        out.append(xb.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out) if out else x.new_zeros((0, x.shape[1], size, size))


def to_nchw(images: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) -> (N, C, H, W), the layout every Dataset uses."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4 and images.shape[3] in (1, 3):
        return images.transpose(0, 3, 1, 2)
    raise BenchError(f"{where}: images must have shape (N, H, W) or (N, H, W, C) with C 1 or 3, "
                     f"got {images.shape}. Save them channels-last.")


def imbalance_note(name: str, counts: np.ndarray, class_names: Sequence[str],
                   ratio: float = 2.0) -> str | None:
    """Warn when the largest class has more than `ratio` times the images of the smallest.

    Skewed classes change what the classifier-based metrics mean (a generator can score
    well by doing the big classes only); the user should know before reading a leaderboard.
    Returns the message (also kept in the Dataset's `notes`) or None when balanced.
    """
    counts = np.asarray(counts)
    if len(counts) == 0 or counts.min() <= 0 or counts.max() / counts.min() <= ratio:
        return None
    listing = ", ".join(f"{n}: {int(c)}" for n, c in zip(class_names, counts, strict=True))
    msg = (f"dataset {name}: classes are imbalanced (largest/smallest = "
           f"{counts.max() / counts.min():.1f}); images per class: {listing}")
    warnings.warn(msg, stacklevel=3)
    return msg


def npz_header(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Array shapes and dtypes of an .npz without reading the arrays (cheap validation)."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                with zf.open(name) as f:
                    major, _ = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if major == 1
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                out[name.removesuffix(".npy")] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise BenchError(f"{path}: not a readable .npz file ({e}). Save it with numpy.savez.") from None
    return out


def image_headers(files: Sequence[Path]) -> list[tuple[Path, tuple[int, int] | None, str]]:
    """(file, (height, width) or None, error) for each image, in order, without decoding the
    pixels: Pillow's `verify()` walks the file's structure (PNG chunk checksums, a truncated
    file), so `bench validate` names corrupt files long before a run would decode them."""
    from PIL import Image

    def one(f: Path) -> tuple[Path, tuple[int, int] | None, str]:
        try:
            with Image.open(f) as im:
                w, h = im.size
                im.verify()
            return f, (h, w), ""
        except Exception as e:  # noqa: BLE001 - whatever an untrusted file raises, it is unreadable
            why = str(e).replace(f" {str(f)!r}", "").replace(str(f), "").strip()  # named already
            return f, None, f"{type(e).__name__}: {why}" if why else type(e).__name__

    if len(files) < 64:
        return [one(f) for f in files]
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, files))


def bad_files_listing(bad: Sequence[tuple[Path, str]], limit: int = 10) -> str:
    """`file: error` lines for an error message: the first `limit`, then a count."""
    lines = [f"\n    {f}: {err}" for f, err in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"\n    ... and {len(bad) - limit} more")
    return "".join(lines)


def file_sha256(path: Path) -> str:
    """Content hash of a file, streamed: it goes into the cell key so that new data under
    the same path makes new cells instead of being skipped as already measured."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def grouped_split(y: np.ndarray, groups: Sequence[str] | np.ndarray, val_fraction: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Train/val indices with every group (e.g. all images of one patient) on one side only.

    Stratified as well as the groups allow: groups are visited in a seeded random order and
    each goes to val when that brings val's per-class counts closer to `val_fraction` of
    every class. Then single-group moves are made while one improves the split: first
    fewer classes without images on a side, then per-class shares closer to the target.
    Deterministic for the same labels, groups and seed; another seed, another split.
    """
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return np.arange(0), np.arange(0)
    names, gid = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    n_groups, k = len(names), int(y.max()) + 1
    counts = np.bincount(gid * k + y, minlength=n_groups * k).reshape(n_groups, k).astype(float)
    total = counts.sum(0)
    target, scale = val_fraction * total, np.maximum(total, 1.0)

    def shares(v: np.ndarray) -> np.ndarray:  # squared distance of val's class shares to target
        return (((v - target) / scale) ** 2).sum(-1)

    def score(v: np.ndarray) -> np.ndarray:
        """Classes without images in val or in train first, then `shares` (below 1 per class,
        so it never outweighs an empty side)."""
        present = total > 0
        empty = ((v <= 0) & present).sum(-1) + ((total - v <= 0) & present).sum(-1)
        return empty * (k + 1.0) + shares(v)

    in_val = np.zeros(n_groups, dtype=bool)
    val = np.zeros(k)
    for g in np.random.default_rng(seed).permutation(n_groups):
        if shares(val + counts[g]) < shares(val):
            in_val[g] = True
            val += counts[g]
    for _ in range(n_groups + 2 * k):  # every move lowers the score, so this ends
        moved = val[None] + np.where(in_val, -1.0, 1.0)[:, None] * counts  # each single move
        scores = score(moved)
        g = int(np.argmin(scores))
        if scores[g] >= score(val) - 1e-12:
            break
        in_val[g] = not in_val[g]
        val = moved[g]
    return np.flatnonzero(~in_val[gid]), np.flatnonzero(in_val[gid])
