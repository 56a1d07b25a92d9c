"""Arrays in .npz files: the lowest common denominator any framework can write.

Either one file with `train_images`, `train_labels`, `val_images`, `val_labels`, or two
files (`train`, `val`) each with `images` and `labels`. Images are uint8 (N, H, W) or
(N, H, W, C); labels are integers 0..K-1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import Field, model_validator

from bench.data import DATASETS
from bench.data._util import file_sha256, imbalance_note, npz_header, to_nchw
from bench.data.base import DataInfo, Dataset, DatasetSource
from bench.errors import BenchError
from bench.registry import Options


class NpzOptions(Options):
    path: Path | None = Field(None, description="one .npz with train_images, train_labels, "
                              "val_images, val_labels")
    train: Path | None = Field(None, description="an .npz with `images` and `labels` (train split)")
    val: Path | None = Field(None, description="an .npz with `images` and `labels` (val split)")
    class_names: list[str] | None = Field(None, description="names of classes 0..K-1 "
                                          "(also fixes K when a class is absent from the labels)")

    @model_validator(mode="after")
    def _one_layout(self) -> NpzOptions:
        if self.path is not None and (self.train is not None or self.val is not None):
            raise ValueError("give either `path` (one file) or `train` and `val` (two files), not both")
        if self.path is None and (self.train is None or self.val is None):
            raise ValueError("give `path` (one .npz with train_images, train_labels, val_images, "
                             "val_labels) or both `train` and `val` (.npz files with images, labels)")
        return self


@DATASETS.register("npz")
class Npz(DatasetSource):
    """Images and labels in .npz files (one file with both splits, or one per split)."""

    Options = NpzOptions
    options: NpzOptions

    def _arrays(self) -> dict[str, tuple[Path, str]]:
        """split -> (file, array-name prefix): where each split's images and labels live."""
        o = self.options
        if o.path is not None:
            return {"train": (o.path, "train_"), "val": (o.path, "val_")}
        assert o.train is not None and o.val is not None
        return {"train": (o.train, ""), "val": (o.val, "")}

    def _files(self) -> list[tuple[str, Path]]:
        o = self.options
        return [("path", o.path)] if o.path is not None else [("train", o.train), ("val", o.val)]  # type: ignore[list-item]

    def _shapes(self) -> dict[str, tuple[int, int, int]]:
        """(C, H, W) per split from the array headers, checking names, dtypes and lengths."""
        for field, f in self._files():
            if not f.is_file():
                raise BenchError(f"npz: `{field}` file {f} does not exist. Check the path (relative "
                                 "paths are resolved against the suite file's folder).")
        headers = {f: npz_header(f) for _, f in self._files()}
        out = {}
        for split, (f, pre) in self._arrays().items():
            h = headers[f]
            want = [f"{pre}images", f"{pre}labels"]
            missing = [a for a in want if a not in h]
            if missing:
                raise BenchError(f"{f}: missing array(s) {missing}; found {sorted(h)}. Save with "
                                 f"numpy.savez({f.name}, {want[0]}=..., {want[1]}=...).")
            shape, dtype = h[want[0]]
            if dtype != np.uint8:
                raise BenchError(f"{f}: `{want[0]}` must be uint8 in [0, 255], got {dtype}. "
                                 "Convert with (x * 255).round().astype(np.uint8) or similar.")
            if len(shape) == 3:
                chw = (1, shape[1], shape[2])
            elif len(shape) == 4 and shape[3] in (1, 3):
                chw = (shape[3], shape[1], shape[2])
            else:
                raise BenchError(f"{f}: `{want[0]}` must be (N, H, W) or (N, H, W, C) with C 1 "
                                 f"or 3, got {shape}.")
            lshape, ldtype = h[want[1]]
            if lshape != (shape[0],) or not np.issubdtype(ldtype, np.integer):
                raise BenchError(f"{f}: `{want[1]}` must be integers of shape ({shape[0]},), got "
                                 f"{ldtype} {lshape}.")
            out[split] = chw
        if out["train"] != out["val"]:
            raise BenchError(f"npz: train images are {out['train']} (C, H, W), val images "
                             f"{out['val']}. Both splits need the same shape.")
        return out

    def _labels(self) -> dict[str, np.ndarray]:
        out = {}
        for split, (f, pre) in self._arrays().items():
            with np.load(f) as z:  # reads only the (small) label array
                out[split] = z[f"{pre}labels"].astype(np.int64)
        return out

    def _num_classes(self, labels: dict[str, np.ndarray]) -> int:
        o = self.options
        if not any(len(y) for y in labels.values()):
            raise BenchError("npz: both splits are empty.")
        lo = min(int(y.min()) for y in labels.values() if len(y))
        hi = max(int(y.max()) for y in labels.values() if len(y))
        if lo < 0:
            raise BenchError(f"npz: labels must be 0..K-1, found {lo}. Map them to class indices.")
        if o.class_names is not None:
            if hi >= len(o.class_names):
                raise BenchError(f"npz: label {hi} found but `class_names` lists "
                                 f"{len(o.class_names)} classes. Add the missing names.")
            return len(o.class_names)
        return hi + 1

    def check(self) -> None:
        self._shapes()
        labels = self._labels()
        for split, y in labels.items():
            if len(y) == 0:
                raise BenchError(f"npz: the {split} split is empty.")
        self._num_classes(labels)

    def describe(self) -> DataInfo:
        c, h, w = self._shapes()["train"]
        return DataInfo(c, h, w, self._num_classes(self._labels()))

    def load(self) -> Dataset:
        self.check()
        xs, ys = {}, {}
        for split, (f, pre) in self._arrays().items():
            with np.load(f) as z:
                xs[split] = torch.from_numpy(np.ascontiguousarray(to_nchw(z[f"{pre}images"], str(f))))
                ys[split] = z[f"{pre}labels"].astype(np.int64)
        k = self._num_classes(ys)
        names = self.options.class_names or [str(i) for i in range(k)]
        name = self.options.path or self.options.train
        assert name is not None
        notes: dict[str, str] = {}
        note = imbalance_note(f"npz {name.name}", np.bincount(ys["train"], minlength=k), names)
        if note:
            notes["imbalance"] = note
        ds = Dataset(name=f"npz:{name.name}", train_x=xs["train"],
                     train_y=torch.from_numpy(ys["train"]), val_x=xs["val"],
                     val_y=torch.from_numpy(ys["val"]), num_classes=k, class_names=list(names))
        ds.notes = notes
        return ds

    def fingerprint(self) -> dict[str, str]:
        """Content hash of the files: new arrays under the same path are new cells."""
        return {f"{field}_sha256": file_sha256(f) for field, f in self._files() if f.is_file()}
