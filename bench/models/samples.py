"""A user's pre-generated images: an .npz (`images`, optional `labels`) or a folder of images
(one sub-folder per class, or flat).

This is how generators written in any framework enter the suite: sample once, save, point
the suite at the file. Samples without labels (a flat folder, an npz without `labels`) are
an unconditional model: served for any requested class, refused by the metrics that need
labels (`Metric.label_need`, checked by `bench validate`). Float arrays are converted from
their declared `range`; the axis order of 4-d arrays is `layout` (as in the npz dataset).
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data._util import (
    bad_files_listing,
    check_dtype,
    decode_image,
    describe_array,
    file_sha256,
    image_headers,
    image_layout,
    images_to_nchw_uint8,
    npz_header,
    parse_range,
)
from bench.data.base import DataInfo, Dataset
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.pool import PoolGenerator

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class SamplesOptions(Options):
    path: Path = Field(description="an .npz with `images` (N,H,W[,C] or N,C,H,W) and, for a "
                       "class-conditional model, int `labels`; or a folder with one sub-folder "
                       "of PNG/JPEG files per class, or the files directly (unconditional)")
    range: str | None = Field(None, description="value range of float `images`, e.g. \"[0, 1]\", "
                              "\"[-1, 1]\", \"[0, 255]\": mapped onto uint8 [0, 255] (required "
                              "for float arrays; uint8 needs none)")
    layout: Literal["auto", "nchw", "nhwc"] = Field("auto", description="axis order of 4-d "
                                                   "`images`; auto: only when unambiguous")

    @field_validator("range", mode="before")
    @classmethod
    def _range(cls, v: Any) -> str | None:
        return parse_range(v)


class UnconditionalPool(PoolGenerator):
    """Images without labels, served whatever labels are asked for: one seeded permutation of
    the whole pool walked without replacement along the stream (wrapping around), as
    PoolGenerator walks one class. So a stream as long as the pool holds every image once."""

    def __init__(self, images: torch.Tensor, num_classes: int):
        super().__init__(images, torch.zeros(len(images), dtype=torch.int64), 1)
        self.num_classes = num_classes
        self.distinct_per_class = None  # served whatever the labels: only the total counts

    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        return super().sample(n, torch.zeros_like(labels), seed)

    def sample_stream(self, labels: torch.Tensor, start: int, seed: int) -> torch.Tensor:
        return super().sample_stream(torch.zeros_like(labels), start, seed)


def _sub_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def _images_in(folder: Path) -> list[Path]:
    return [f for f in sorted(folder.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES
            and not f.name.startswith(".") and f.is_file()]


@MODELS.register("samples")
class Samples(ModelSource[SamplesOptions]):
    """Pre-generated images from any framework (.npz, or a folder: by class or flat)."""

    def fingerprint(self) -> dict[str, str]:
        """Content hash of the samples: new samples under the same path are a new cell."""
        path = self.options.path
        h = hashlib.sha256()
        if path.is_file():
            return {"content_sha256": file_sha256(path)[:16]}
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    st = f.stat()
                    h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
            # decoding 2: 16-bit images scaled as the real side's (1 clipped them): a new cell
            # and a new cached stream, never the old images under the same identity
            return {"content_sha256": h.hexdigest()[:16], "decoding": "2"}
        return {"content_sha256": h.hexdigest()[:16]}

    def unconditional(self) -> str | None:
        path = self.options.path
        if path.is_dir() and not _sub_dirs(path):
            return f"a folder of samples without class sub-folders ({path})"
        if path.is_file() and path.suffix == ".npz":
            try:
                header = npz_header(path)
            except BenchError:
                return None  # check() reports the file
            if "images" in header and "labels" not in header:
                return f"an .npz of samples without `labels` ({path})"
        return None

    def _folder_classes(self, root: Path) -> list[Path]:
        """The class folders of `root` in class order; a flat folder is its own one class."""
        dirs = _sub_dirs(root)
        if dirs:
            return dirs
        if not _images_in(root):
            raise BenchError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and no class "
                             "sub-folders. Put the samples there, one sub-folder per class (or "
                             "all in the folder for an unconditional model).")
        return [root]

    def check(self, info: DataInfo) -> None:
        path = self.options.path
        if not path.exists():
            raise BenchError(f"samples file {path} does not exist. Check `path` (relative paths "
                             "are resolved against the suite file's folder).")
        if path.is_dir():
            dirs = self._folder_classes(path)
            flat = dirs == [path]
            if not flat and info.labeled and len(dirs) != info.num_classes:
                raise BenchError(f"{path}: {len(dirs)} class folders, the dataset has "
                                 f"{info.num_classes} classes. Put the images of class c in the "
                                 "c-th folder (sorted by name), one folder per class (or all "
                                 "images directly in the folder for an unconditional model).")
            self._check_folder(path, dirs, info, flat)
            return
        header = npz_header(path)  # raises a BenchError for an unreadable file
        if "images" not in header:
            raise BenchError(f"{path}: missing array `images`; found {sorted(header) or 'none'}. "
                             "Save with numpy.savez(path, images=..., labels=...) (labels are "
                             "optional: without them the model is unconditional).")
        shape, dtype = header["images"]
        what = f"{path}: `images` ({describe_array(shape, dtype)})"
        check_dtype(what, dtype, self.options.range)
        _, chw = image_layout(shape, self.options.layout, str(path), "images", dtype)
        if tuple(chw) != info.image_shape:
            c = info.channels
            raise BenchError(f"{path}: images are {tuple(chw)} (C, H, W) (`images` is a "
                             f"{describe_array(shape, dtype)}); the dataset's are {info.image_shape}. "
                             "Generate at the dataset's resolution and save `images` as "
                             f"{'(N, H, W)' if c == 1 else f'(N, H, W, {c})'} uint8.")
        if shape[0] == 0:
            raise BenchError(f"{path}: `images` is empty.")
        if "labels" not in header or not info.labeled:  # unconditional samples, or data
            return
        lshape, ldtype = header["labels"]
        if lshape != (shape[0],):
            raise BenchError(f"{path}: `labels` has shape {lshape}, expected ({shape[0]},): one "
                             "class index per image.")
        if not np.issubdtype(ldtype, np.integer):
            raise BenchError(f"{path}: `labels` must be integer class indices, got {ldtype}. "
                             "Save labels.astype(numpy.int64).")
        try:
            with np.load(path) as z:  # reads only the labels member, not the images
                labels = np.asarray(z["labels"])
        except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as e:
            raise BenchError(f"{path}: cannot read `labels` ({type(e).__name__}: {e}). Save the "
                             "file again with numpy.savez(path, images=..., labels=...).") from None
        self._check_labels(path, labels, info)

    def _check_labels(self, path: Path, labels: np.ndarray, info: DataInfo) -> None:
        """Every label a class of the dataset, and every class present (what build() needs)."""
        k = info.num_classes
        out = np.flatnonzero((labels < 0) | (labels >= k))
        if len(out):
            values = np.unique(labels[out])
            raise BenchError(f"{path}: {len(out)} of {len(labels)} label(s) are outside the "
                             f"dataset's classes 0..{k - 1}: value(s) {values[:10].tolist()}, e.g. "
                             f"labels[{out[0]}] = {labels[out[0]]}. Labels are class indices in "
                             "the dataset's class order: fix the labels, or check that the "
                             "samples were generated for this dataset.")
        absent = np.flatnonzero(np.bincount(labels.astype(np.int64), minlength=k) == 0)
        if len(absent):
            raise BenchError(f"{path}: no images of class(es) {absent[:20].tolist()}; a "
                             "class-conditional benchmark needs samples of every class. "
                             "Generate images of those classes too.")

    def _check_folder(self, path: Path, dirs: list[Path], info: DataInfo, flat: bool) -> None:
        """Every class folder has images, and every image has a readable header of the
        dataset's size (Pillow's verify: no pixels are decoded)."""
        files = [_images_in(d) for d in dirs]
        empty = [d.name for d, fs in zip(dirs, files, strict=True) if not fs]
        if empty and info.labeled:
            raise BenchError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in class "
                             f"folder(s) {empty[:20]}; a class-conditional benchmark needs "
                             "samples of every class. Generate images of those classes too.")
        headers = image_headers([f for fs in files for f in fs])
        bad = [(f, err) for f, hw, err in headers if hw is None]
        if bad:
            raise BenchError(f"{path}: {len(bad)} unreadable image file(s) (corrupt or "
                             f"truncated):{bad_files_listing(bad)}\n    Delete them, or save the "
                             "samples again.")
        want = (info.height, info.width)
        wrong = [(f, hw) for f, hw, _ in headers if hw is not None and hw != want]
        if wrong:
            f, hw = wrong[0]
            raise BenchError(f"{path}: {len(wrong)} image(s) are not {want[0]}x{want[1]} (the "
                             f"dataset's size), e.g. {f} is {hw[0]}x{hw[1]}. Generate at the "
                             "dataset's resolution.")

    def _load(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 (N, C, H, W) images and their labels (None: the samples have none)."""
        path = self.options.path
        labels: np.ndarray | None
        if path.is_dir():
            from PIL import Image

            xs, ys = [], []
            dirs = self._folder_classes(path)
            for c, d in enumerate(dirs):
                for f in _images_in(d):
                    try:
                        with Image.open(f) as im:
                            # the dataset's decoding: 16-bit scaled by its range, not clipped
                            xs.append(np.asarray(decode_image(im, dataset.info.channels)))
                    except OSError as e:
                        raise BenchError(f"{f}: cannot read image ({e}).") from None
                    ys.append(c)
            stacked = np.stack(xs)
            images = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
            labels = None if dirs == [path] else np.asarray(ys)
        else:
            with np.load(path) as z:
                images = images_to_nchw_uint8(z["images"], str(path), "images", self.options.range,
                                              self.options.layout)
                labels = np.asarray(z["labels"]) if "labels" in z.files else None
        if labels is not None and dataset.labeled and (labels.min() < 0 or labels.max() >= dataset.num_classes):
            raise BenchError(f"{path}: labels must be in 0..{dataset.num_classes - 1}, "
                             f"found {labels.min()}..{labels.max()}")
        y = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
        return torch.from_numpy(np.ascontiguousarray(images)), y

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        x, y = self._load(dataset)
        if y is None or not dataset.labeled:  # no labels, or data without classes: one pool
            return UnconditionalPool(x, dataset.num_classes)
        gen = PoolGenerator(x, y, dataset.num_classes)
        if gen.missing_classes():
            raise BenchError(f"{self.options.path}: no images of class(es) {gen.missing_classes()}; "
                             "a class-conditional benchmark needs samples of every class.")
        return gen
