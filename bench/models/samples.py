"""A user's pre-generated images: an .npz (`images`, `labels`) or a folder of class folders.

This is how generators written in any framework enter the suite: sample once, save, point
the suite at the file.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from bench.data._util import bad_files_listing, file_sha256, image_headers, npz_header
from bench.data.base import DataInfo, Dataset
from bench.errors import BenchError
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.pool import PoolGenerator
from bench.registry import Options

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


class SamplesOptions(Options):
    path: Path = Field(description="an .npz with uint8 `images` (N,H,W[,C]) and int `labels`, "
                       "or a folder with one sub-folder of PNG/JPEG files per class")


def _to_nchw(images: np.ndarray, where: str) -> np.ndarray:
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        return images.transpose(0, 3, 1, 2)
    raise BenchError(f"{where}: `images` must have shape (N, H, W) or (N, H, W, C), got {images.shape}")


@MODELS.register("samples")
class Samples(ModelSource):
    """Pre-generated images from any framework (.npz or a folder of class sub-folders)."""

    Options = SamplesOptions
    options: SamplesOptions

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
        return {"content_sha256": h.hexdigest()[:16]}

    def _folder_classes(self, root: Path) -> list[Path]:
        dirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
        if not dirs:
            raise BenchError(f"{root}: no class sub-folders. Put each class's images in its own folder.")
        return dirs

    def check(self, info: DataInfo) -> None:
        path = self.options.path
        if not path.exists():
            raise BenchError(f"samples file {path} does not exist. Check `path` (relative paths "
                             "are resolved against the suite file's folder).")
        if path.is_dir():
            dirs = self._folder_classes(path)
            if len(dirs) != info.num_classes:
                raise BenchError(f"{path}: {len(dirs)} class folders, the dataset has "
                                 f"{info.num_classes} classes. Put the images of class c in the "
                                 "c-th folder (sorted by name), one folder per class.")
            self._check_folder(path, dirs, info)
            return
        header = npz_header(path)  # raises a BenchError for an unreadable file
        missing = {"images", "labels"} - set(header)
        if missing:
            raise BenchError(f"{path}: missing array(s) {sorted(missing)}; found {sorted(header)}. "
                             "Save with numpy.savez(path, images=..., labels=...).")
        shape, dtype = header["images"]
        if dtype != np.uint8:
            raise BenchError(f"{path}: `images` must be uint8 in [0, 255], got {dtype}.")
        if len(shape) not in (3, 4):
            raise BenchError(f"{path}: `images` must be (N, H, W) or (N, H, W, C), got {shape}")
        chw = (1, *shape[1:3]) if len(shape) == 3 else (shape[3], *shape[1:3])
        if tuple(chw) != info.image_shape:
            layout = "(N, H, W)" if info.channels == 1 else f"(N, H, W, {info.channels})"
            raise BenchError(f"{path}: images are {chw} (C, H, W), the dataset's are "
                             f"{info.image_shape}. Generate at the dataset's resolution and save "
                             f"`images` as {layout} uint8.")
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

    def _check_folder(self, path: Path, dirs: list[Path], info: DataInfo) -> None:
        """Every class folder has images, and every image has a readable header of the
        dataset's size (Pillow's verify: no pixels are decoded)."""
        files = [[f for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
                 for d in dirs]
        empty = [d.name for d, fs in zip(dirs, files, strict=True) if not fs]
        if empty:
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

    def _load(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.options.path
        if path.is_dir():
            from PIL import Image

            xs, ys = [], []
            mode = "L" if dataset.info.channels == 1 else "RGB"
            for c, d in enumerate(self._folder_classes(path)):
                for f in sorted(d.iterdir()):
                    if f.suffix.lower() in IMAGE_SUFFIXES:
                        try:
                            xs.append(np.asarray(Image.open(f).convert(mode)))
                        except OSError as e:
                            raise BenchError(f"{f}: cannot read image ({e}).") from None
                        ys.append(c)
            images = _to_nchw(np.stack(xs), str(path))
            labels = np.asarray(ys)
        else:
            with np.load(path) as z:
                images, labels = _to_nchw(z["images"], str(path)), z["labels"]
        if labels.min() < 0 or labels.max() >= dataset.num_classes:
            raise BenchError(f"{path}: labels must be in 0..{dataset.num_classes - 1}, "
                             f"found {labels.min()}..{labels.max()}")
        return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64))

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        x, y = self._load(dataset)
        gen = PoolGenerator(x, y, dataset.num_classes)
        if gen.missing_classes():
            raise BenchError(f"{self.options.path}: no images of class(es) {gen.missing_classes()}; "
                             "a class-conditional benchmark needs samples of every class.")
        return gen
