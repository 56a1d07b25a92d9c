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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.errors import BenchError
from bench.core.safe_names import printable


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


def to_nchw(images: np.ndarray, where: str, layout: str = "auto", field: str = "images") -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) -> (N, C, H, W), the layout every Dataset
    uses (`layout`: see `image_layout`)."""
    kind, _ = image_layout(tuple(images.shape), layout, where, field, images.dtype)
    if kind == "nhw":
        return images[:, None]
    if kind == "nhwc":
        return images.transpose(0, 3, 1, 2)
    return images


# ---------------------------------------------------------------- arrays of images
# Arrays written by other frameworks come as uint8 in [0, 255], or as floats in [0, 1]
# (torchvision's ToTensor), [-1, 1] (a tanh generator) or [0, 255]; channels last (numpy,
# PIL, TensorFlow) or first (torch). A float array's range cannot be told from its values
# (a dark [0, 255] image is all below 1), nor can (N, 3, 8, 3) say which axis holds the
# channels: both are declared (`range`, `layout`), never guessed where a guess could be wrong.
LAYOUTS = ("auto", "nchw", "nhwc")
COMMON_RANGES = ('"[0, 1]"', '"[-1, 1]"', '"[0, 255]"')
CHANNELS = (1, 3)


def parse_range(value: object) -> str | None:
    """A declared value range as its canonical text "[lo, hi]" (from "[-1, 1]", "-1,1" or a
    two-number list); ValueError when it is none of these or lo >= hi."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.strip().removeprefix("[").removesuffix("]").split(",")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        parts = []
    try:
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"`range` is the images' value range as \"[lo, hi]\", e.g. "
                         f"{', '.join(COMMON_RANGES)}; got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"`range` needs finite lo < hi, got {value!r}")
    return f"[{lo:g}, {hi:g}]"


def range_bounds(declared: str) -> tuple[float, float]:
    lo, hi = declared.strip("[]").split(",")
    return float(lo), float(hi)


def describe_array(shape: tuple[int, ...], dtype: Any = None) -> str:
    """An array as a person would check it against what they saved: dtype and shape."""
    return f"{np.dtype(dtype).name + ' ' if dtype is not None else ''}array of shape {tuple(shape)}"


def image_layout(shape: tuple[int, ...], layout: str, where: str, field: str = "images",
                 dtype: Any = None) -> tuple[str, tuple[int, int, int]]:
    """("nhw" | "nchw" | "nhwc", (C, H, W)) of an image array of `shape`, or a BenchError
    that describes the array as it is. `layout: auto` decides only when one end of a 4-d
    array is a channel count (1 or 3) and the other is not; otherwise it must be declared."""
    what = f"{where}: `{field}` is a {describe_array(shape, dtype)}"
    if len(shape) == 3:
        if layout != "auto":
            raise BenchError(f"{what}: 3 dimensions are grey images (N, H, W), without a channel "
                             f"axis, but `layout: {layout}` was declared. Drop `layout`, or save "
                             f"the images with their channel axis.")
        return "nhw", (1, int(shape[1]), int(shape[2]))
    if len(shape) != 4:
        raise BenchError(f"{what}: images need 3 dimensions (N, H, W: grey) or 4 (N, H, W, C "
                         "or N, C, H, W with C 1 or 3). Reshape the array.")
    n, a, b, c = (int(s) for s in shape)
    first, last = a in CHANNELS, c in CHANNELS
    as_nchw = f"(N, C, H, W) = {n} images, {a} channel(s), {b}x{c}"
    as_nhwc = f"(N, H, W, C) = {n} images of {a}x{b}, {c} channel(s)"
    if layout == "nchw" or (layout == "auto" and first and not last):
        if not first:
            raise BenchError(f"{what}: with `layout: nchw` that is {as_nchw}, and images have 1 "
                             f"or 3 channels.{' Its last axis fits: `layout: nhwc`.' if last else ''}")
        return "nchw", (a, b, c)
    if layout == "nhwc" or (layout == "auto" and last and not first):
        if not last:
            raise BenchError(f"{what}: with `layout: nhwc` that is {as_nhwc}, and images have 1 "
                             f"or 3 channels.{' Its axis 1 fits: `layout: nchw`.' if first else ''}")
        return "nhwc", (c, a, b)
    if layout not in LAYOUTS:
        raise BenchError(f"{where}: `layout: {layout}`: use one of {', '.join(LAYOUTS)}.")
    if first and last:
        raise BenchError(f"{what}: it reads as {as_nchw}, or as {as_nhwc}. Declare which: "
                         "`layout: nchw` or `layout: nhwc`.")
    raise BenchError(f"{what}: neither axis 1 ({a}) nor axis 3 ({c}) is a channel count (1 or "
                     "3), so it is not (N, C, H, W) nor (N, H, W, C). Save grey images as (N, H, "
                     "W), colour images with 3 channels.")


def undeclared_range(what: str, dtype: Any, values: tuple[float, float] | None = None) -> str:
    """The message for a float (or wide integer) array whose value range is not declared:
    which declaration to add, where."""
    seen = f" (values from {values[0]:.4g} to {values[1]:.4g})" if values is not None else ""
    return (f"{what}{seen}: {np.dtype(dtype).name} images need their value range declared, "
            f"e.g. `range: \"[-1, 1]\"` (or {COMMON_RANGES[0]}, {COMMON_RANGES[2]}) on the "
            "dataset or model entry of the suite, `range=\"[-1, 1]\"` in bench.evaluate, "
            "`--range \"[-1, 1]\"` in `bench score`; or save uint8 images in [0, 255].")


def check_dtype(what: str, dtype: Any, declared: str | None) -> None:
    """Refuse what `to_uint8` cannot convert, from the array's header alone (validation)."""
    dt = np.dtype(dtype)
    if dt == np.uint8:
        if declared not in (None, "[0, 255]"):
            raise BenchError(f"{what}: uint8 images are in [0, 255]; `range: {declared}` is for "
                             "float arrays. Drop `range`.")
        return
    if dt.kind not in "fiu":
        raise BenchError(f"{what}: {dt.name} is not an image type. Save uint8 images in [0, 255], "
                         "or floats with a declared `range`.")
    if declared is None:
        raise BenchError(undeclared_range(what, dt))


def to_uint8(images: np.ndarray, what: str, declared: str | None, chunk: int = 4096) -> np.ndarray:
    """uint8 images from an array of any numeric dtype: uint8 as it is, anything else
    mapped from its declared range [lo, hi] linearly onto [0, 255] and rounded. Values
    beyond the range by more than half a grey level are refused (a wrong declaration,
    e.g. [0, 1] for [0, 255] data), never silently clipped."""
    check_dtype(what, images.dtype, declared)
    if images.dtype == np.uint8:
        return images
    assert declared is not None
    lo, hi = range_bounds(declared)
    if images.size == 0:
        return np.zeros(images.shape, np.uint8)
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise BenchError(f"{what}: the array holds NaN or infinite values; images must be finite.")
    mn, mx = float(images.min()), float(images.max())
    slack = (hi - lo) / 510
    if mn < lo - slack or mx > hi + slack:
        raise BenchError(f"{what}: values from {mn:.4g} to {mx:.4g}, outside the declared "
                         f"`range: {declared}`. Declare the range the values are in (e.g. "
                         f"{', '.join(COMMON_RANGES)}).")
    out = np.empty(images.shape, np.uint8)
    scale = 255.0 / (hi - lo)
    for i in range(0, images.shape[0], chunk):  # a float copy of one chunk at a time
        block = (images[i : i + chunk].astype(np.float64) - lo) * scale
        out[i : i + chunk] = np.clip(np.rint(block), 0, 255)
    return out


def images_to_nchw_uint8(images: np.ndarray, where: str, field: str, declared: str | None,
                         layout: str = "auto") -> np.ndarray:
    """Any accepted image array -> uint8 (N, C, H, W), C-contiguous; errors name `where`
    (the file) and `field` (the array)."""
    x = to_nchw(images, where, layout, field)
    return np.ascontiguousarray(to_uint8(x, f"{where}: `{field}`", declared))


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
    # class names are folder names: a control character in one is shown, never obeyed
    msg = printable(f"dataset {name}: classes are imbalanced (largest/smallest = "
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


# Pillow's wider-than-8-bit grayscale modes (16-bit PNG/TIFF scans, 32-bit int, float)
WIDE_GRAY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def wide_to_8bit(a: np.ndarray) -> np.ndarray:
    """16-bit (or float) grayscale to uint8 by the type's range, not by clipping: medical and
    scientific images are often stored with 16 bits per pixel."""
    top = 1.0 if a.dtype.kind == "f" and a.max(initial=0) <= 1.0 else 65535.0
    return np.round(a.astype(np.float64) / top * 255.0).clip(0, 255).astype(np.uint8)


def decode_image(im: Any, channels: int) -> Any:
    """An opened Pillow image as 8-bit "L" (channels 1) or "RGB" (3). The one decoding of
    image files on both sides, real (image_folder) and generated (samples), so a folder
    scored against itself is identical: Pillow's `convert("L")` clips 16-bit values to 255,
    so wide grayscale is scaled by its range first."""
    from PIL import Image

    if im.mode in WIDE_GRAY_MODES:
        im = Image.fromarray(wide_to_8bit(np.asarray(im)), "L")
    return im.convert("L" if channels == 1 else "RGB")


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
