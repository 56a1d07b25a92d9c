"""A user's pre-generated images: an .npz (`images`, `labels`) or a folder of class folders.

This is how generators written in any framework enter the suite: sample once, save, point
the suite at the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from bench.data._util import file_sha256, npz_header
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
            n = len(self._folder_classes(path))
            if n != info.num_classes:
                raise BenchError(f"{path}: {n} class folders, the dataset has {info.num_classes} classes.")
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
            raise BenchError(f"{path}: images are {chw} (C, H, W), the dataset's are "
                             f"{info.image_shape}. Generate at the dataset's resolution.")
        if header["labels"][0] != (shape[0],):
            raise BenchError(f"{path}: `labels` has shape {header['labels'][0]}, expected ({shape[0]},)")

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
