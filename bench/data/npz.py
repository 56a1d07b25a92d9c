"""Arrays in .npz files: the lowest common denominator any framework can write.

Three layouts: one file with `train_images`, `val_images` (and `train_labels`,
`val_labels`); one file with `images` (and `labels`), split into train and val by
`val_fraction` (stratified by class when labelled); or two files (`train`, `val`), each
with `images` (and `labels`). The same file may be both `train` and `val`: every image is
then the reference of the distribution metrics (what `bench score` does).

Labels are optional: without them the data is unconditional (one class, `labeled: false`),
for the label-free metrics. Images are uint8 in [0, 255], or any float (or wider integer)
array with its value range declared (`range: "[-1, 1]"`, "[0, 1]", "[0, 255]"), converted
to uint8; (N, H, W) grey, or (N, H, W, C) / (N, C, H, W) with C 1 or 3 (`layout`: auto
decides only when one end is a channel count and the other is not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data import DATASETS
from bench.data._util import (
    check_dtype,
    describe_array,
    file_sha256,
    image_layout,
    images_to_nchw_uint8,
    imbalance_note,
    npz_header,
    parse_range,
)
from bench.data.base import DataInfo, Dataset, DatasetSource, stratified_split

UNLABELED = "all"  # the one class name of unconditional data


class NpzOptions(Options):
    path: Path | None = Field(None, description="one .npz with train_images and val_images (and "
                              "train_labels, val_labels), or with images (and labels) split by "
                              "val_fraction")
    train: Path | None = Field(None, description="an .npz with `images` (and `labels`): the train split")
    val: Path | None = Field(None, description="an .npz with `images` (and `labels`): the val split "
                             "(may be the `train` file: then every image is both)")
    class_names: list[str] | None = Field(None, description="names of classes 0..K-1 "
                                          "(also fixes K when a class is absent from the labels)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="with `path` holding `images`: the "
                                "share held out as val (of each class when labelled)")
    split_seed: int = Field(0, description="seed of that split")
    range: str | None = Field(None, description="value range of float images, e.g. \"[0, 1]\", "
                              "\"[-1, 1]\", \"[0, 255]\": mapped onto uint8 [0, 255] (required "
                              "for float arrays; uint8 needs none)")
    layout: Literal["auto", "nchw", "nhwc"] = Field("auto", description="axis order of 4-d "
                                                   "arrays; auto: only when unambiguous")

    @field_validator("range", mode="before")
    @classmethod
    def _range(cls, v: Any) -> str | None:
        return parse_range(v)

    @model_validator(mode="after")
    def _one_layout(self) -> NpzOptions:
        if self.path is not None and (self.train is not None or self.val is not None):
            raise ValueError("give either `path` (one file) or `train` and `val` (two files), not both")
        if self.path is None and (self.train is None or self.val is None):
            raise ValueError("give `path` (one .npz with train_images and val_images, or with "
                             "images) or both `train` and `val` (.npz files with images)")
        return self


@DATASETS.register("npz")
class Npz(DatasetSource[NpzOptions]):
    """Images (and optional labels) in .npz files: one file, split or not, or one per split."""

    def _files(self) -> list[tuple[str, Path]]:
        o = self.options
        return [("path", o.path)] if o.path is not None else [("train", o.train), ("val", o.val)]  # type: ignore[list-item]

    def _headers(self) -> dict[Path, dict[str, tuple[tuple[int, ...], np.dtype]]]:
        for field, f in self._files():
            if not f.is_file():
                raise BenchError(f"npz: `{field}` file {f} does not exist. Check the path (relative "
                                 "paths are resolved against the suite file's folder).")
        return {f: npz_header(f) for _, f in self._files()}

    def _arrays(self, headers: dict[Path, dict[str, Any]] | None = None) -> dict[str, tuple[Path, str]]:
        """split -> (file, array-name prefix): where each split's images (and labels) live;
        the split "all" when one file's `images` are split by `val_fraction`."""
        o = self.options
        if o.path is None:
            assert o.train is not None and o.val is not None
            return {"train": (o.train, ""), "val": (o.val, "")}
        h = (headers or self._headers())[o.path]
        if "train_images" not in h and "images" in h:
            return {"all": (o.path, "")}
        return {"train": (o.path, "train_"), "val": (o.path, "val_")}

    def _shapes(self) -> tuple[tuple[int, int, int], bool]:
        """((C, H, W), labelled) from the array headers, checking names, dtypes, layouts,
        lengths, and that every split has labels or none has."""
        headers = self._headers()
        arrays = self._arrays(headers)
        chws, labelled = {}, {}
        for split, (f, pre) in arrays.items():
            h = headers[f]
            img = f"{pre}images"
            if img not in h:
                one = f"numpy.savez('{f.name}', images=..., labels=...)"
                two = (f"numpy.savez('{f.name}', train_images=..., train_labels=..., "
                       "val_images=..., val_labels=...)")
                want = "`images`" if pre == "" else "`images` (or `train_images` and `val_images`)"
                how = one if pre == "" else f"{one} (split by val_fraction) or {two}"
                raise BenchError(f"{f}: missing array {want}; found {sorted(h) or 'none'}. Save "
                                 f"with {how}; labels are optional.")
            shape, dtype = h[img]
            check_dtype(f"{f}: `{img}` ({describe_array(shape, dtype)})", dtype, self.options.range)
            _, chws[split] = image_layout(shape, self.options.layout, str(f), img, dtype)
            lab = f"{pre}labels"
            labelled[split] = lab in h
            if lab in h:
                lshape, ldtype = h[lab]
                if lshape != (shape[0],) or not np.issubdtype(ldtype, np.integer):
                    raise BenchError(f"{f}: `{lab}` must be integers of shape ({shape[0]},), one "
                                     f"class index per image; got {ldtype} {lshape}.")
        if len(set(labelled.values())) > 1:
            have = [s for s, v in labelled.items() if v]
            raise BenchError(f"npz: the {have[0]} split has labels, the other has none. Give labels "
                             "for both splits, or for neither (unconditional data).")
        if len(set(chws.values())) > 1:
            raise BenchError(f"npz: train images are {chws['train']} (C, H, W), val images "
                             f"{chws['val']}. Both splits need the same image shape.")
        return next(iter(chws.values())), all(labelled.values())

    def _labels(self, labelled: bool) -> dict[str, np.ndarray]:
        """Labels per split (zeros for unconditional data), read without the images."""
        out = {}
        headers = self._headers()
        for split, (f, pre) in self._arrays(headers).items():
            if labelled:
                with np.load(f) as z:  # reads only the (small) label array
                    out[split] = z[f"{pre}labels"].astype(np.int64)
            else:
                out[split] = np.zeros(headers[f][f"{pre}images"][0][0], np.int64)
        return out

    def _num_classes(self, labels: dict[str, np.ndarray], labelled: bool) -> int:
        o = self.options
        if not any(len(y) for y in labels.values()):
            raise BenchError("npz: no images (the arrays are empty).")
        if not labelled:
            if o.class_names is not None:
                raise BenchError("npz: `class_names` given, but the file(s) have no labels. Save "
                                 "labels beside the images, or drop `class_names`.")
            return 1
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
        _, labelled = self._shapes()
        labels = self._labels(labelled)
        for split, y in labels.items():
            if len(y) == 0:
                raise BenchError(f"npz: the {split} images are empty.")
            if split == "all" and len(y) < 2:
                raise BenchError(f"npz: {self.options.path} holds {len(y)} image(s); a train and "
                                 "a val split need at least two.")
        self._num_classes(labels, labelled)

    def describe(self) -> DataInfo:
        (c, h, w), labelled = self._shapes()
        return DataInfo(c, h, w, self._num_classes(self._labels(labelled), labelled), labelled)

    def load(self, cache: Any = None) -> Dataset:
        self.check()
        o = self.options
        _, labelled = self._shapes()
        xs: dict[str, torch.Tensor] = {}
        ys = self._labels(labelled)
        read: dict[tuple[Path, str], torch.Tensor] = {}  # the same file as train and val: read once
        for split, (f, pre) in self._arrays().items():
            if (f, pre) not in read:
                with np.load(f) as z:
                    read[(f, pre)] = torch.from_numpy(images_to_nchw_uint8(
                        z[f"{pre}images"], str(f), f"{pre}images", o.range, o.layout))
            xs[split] = read[(f, pre)]
        if "all" in xs:  # one set of images: split by val_fraction
            y = ys.pop("all")
            tr, va = (stratified_split(y, o.val_fraction, o.split_seed) if labelled
                      else _random_split(len(y), o.val_fraction, o.split_seed))
            x = xs.pop("all")
            xs = {"train": x[torch.from_numpy(tr)], "val": x[torch.from_numpy(va)]}
            ys = {"train": y[tr], "val": y[va]}
        k = self._num_classes(ys, labelled)
        names = o.class_names or ([str(i) for i in range(k)] if labelled else [UNLABELED])
        name = o.path or o.train
        assert name is not None
        notes: dict[str, str] = {}
        note = (imbalance_note(f"npz {name.name}", np.bincount(ys["train"], minlength=k), names)
                if labelled else None)
        if note:
            notes["imbalance"] = note
        ds = Dataset(name=f"npz:{name.name}", train_x=xs["train"],
                     train_y=torch.from_numpy(ys["train"]), val_x=xs["val"],
                     val_y=torch.from_numpy(ys["val"]), num_classes=k, class_names=list(names),
                     labeled=labelled)
        ds.notes = notes
        return ds

    def fingerprint(self) -> dict[str, str]:
        """Content hash of the files: new arrays under the same path are new cells."""
        return {f"{field}_sha256": file_sha256(f) for field, f in self._files() if f.is_file()}


def _random_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and val indices of n unlabelled items, val a seeded random share."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(max(int(round(n * val_fraction)), 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
