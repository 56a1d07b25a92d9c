"""A folder of class sub-folders (`melanoma/`, `benign/`, ...): the layout most private data
sets (medical, industrial) already have, so they enter the suite without conversion. A
flat folder (images directly in it, no sub-folders) is unconditional data: one class,
`labeled: false`, for the label-free metrics. `val` may be `root` itself: every image is
then in both splits (the reference of `bench score`), decoded and stored once.

Images are decoded with Pillow, converted to 1 or 3 channels and resized to one square
size. A corrupt file stops the load with its name, unless the suite opts into skipping
(then the count is reported), because a silently shrinking dataset changes every metric.

Decoded once, memory-mapped after: the first load decodes the images (a bounded window
of files in flight in the decoding threads) straight into a file and writes the final
uint8 (N, C, H, W) array, training rows then val rows, as one `.npy` in the bench cache
(`image_folder/`), with the labels, notes and dataset digest beside it. Every load then
maps that file: the images are never a Python list of arrays nor a private copy in
memory, only page cache the kernel reads on demand. The entry is keyed by the options,
the folders and the files' names, sizes and modification times (`fingerprint`, the
same identity as the cells'), so changed files are decoded again; delete the cache
folder freely.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.core.safe_names import printable
from bench.core.version import __version__
from bench.data import DATASETS
from bench.data._mapped import cached, mapped, write_meta, write_rows
from bench.data._util import (
    bad_files_listing,
    decode_image,
    grouped_split,
    image_headers,
    imbalance_note,
    limit_per_class,
)
from bench.data.base import DataInfo, Dataset, DatasetSource, stratified_split
from bench.infra.cache import Cache, atomic_write

UNLABELED = "all"  # the one class name of a flat folder (unconditional data)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
MAX_LISTED = 10  # bad files named in one error message
FORMAT = "2"  # of the decoded-images cache entries (2: `labeled`, `val_is_train`)
DECODE_WINDOW = 256  # files handed to the decoding threads at once (bounds images in flight)


class ImageFolderOptions(Options):
    root: Path = Field(description="folder with one sub-folder of images per class "
                       "(the training split, or everything when `val` is not given); images "
                       "directly in it, without sub-folders: unconditional data (no labels)")
    val: Path | None = Field(None, description="optional folder with the same class sub-folders, "
                             "used as the val split (`root` itself: every image is in both); "
                             "else a stratified split of `root`")
    image_size: int | None = Field(None, ge=4, le=1024, description="resize every image to "
                                   "this square side; default: the size of the images (all equal)")
    channels: Literal[1, 3] = Field(3, description="1 (grayscale) or 3 (RGB)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of each class held out as "
                                "val when `val` is not given")
    split_seed: int = Field(0, description="seed of the train/val split and of max_per_class")
    max_per_class: int | None = Field(None, ge=1, description="read at most this many images "
                                      "per class from each folder (seeded, deterministic)")
    skip_bad_files: bool = Field(False, description="skip unreadable images (counted and "
                                 "reported) instead of stopping with their names")
    group: str | None = Field(None, description="regex over each image's path relative to its "
                              "folder (`benign/p07_2.png`): the first capture group, or the whole "
                              "match, is a group id (e.g. a patient). The split of `root` keeps "
                              "every group on one side; with `val`, no group may be in both")

    @field_validator("group")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"`group` is not a valid regular expression ({e})") from None
        return v


def _sub_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def _is_flat(root: Path) -> bool:
    """Images directly in the folder and no sub-folders: unconditional data (no labels)."""
    return root.is_dir() and not _sub_dirs(root) and any(
        p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        for p in root.iterdir())


def _class_dirs(root: Path) -> list[Path]:
    """The class folders, in class order; a flat folder is its own one class."""
    return [root] if _is_flat(root) else _sub_dirs(root)


def _class_names(root: Path) -> list[str]:
    return [UNLABELED] if _is_flat(root) else [d.name for d in _sub_dirs(root)]


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith(".") and p.is_file())


def _first_image_size(dirs: list[Path]) -> tuple[int, int] | None:
    """(height, width) of the first readable image: Pillow reads only the header."""
    from PIL import Image

    for d in dirs:
        for f in _image_files(d)[:5]:
            try:
                with Image.open(f) as im:
                    w, h = im.size
                return h, w
            except Exception:  # noqa: BLE001 - a bad file is reported by load(), not here
                continue
    return None


@DATASETS.register("image_folder")
class ImageFolder(DatasetSource[ImageFolderOptions]):
    """Images in class sub-folders (PNG, JPEG, ...), with an optional val folder."""

    def _folders(self) -> list[tuple[str, Path]]:
        o = self.options
        return [("root", o.root)] + ([("val", o.val)] if o.val is not None else [])

    def check(self) -> None:
        o = self.options
        for field, folder in self._folders():
            if not folder.is_dir():
                raise BenchError(f"image_folder: `{field}` folder {folder} does not exist. Point it "
                                 "at a folder with one sub-folder of images per class (relative "
                                 "paths are resolved against the suite file's folder).")
        classes = _class_names(o.root)
        if not _is_flat(o.root) and len(classes) < 2:
            raise BenchError(f"image_folder: {o.root} has {len(classes)} class sub-folder(s); a "
                             "class-conditional benchmark needs at least two (e.g. melanoma/, "
                             "benign/). For data without labels, put the images directly in "
                             "the folder (no sub-folders): the label-free metrics run on it.")
        for field, folder in self._folders():
            dirs = _class_dirs(folder)
            if field == "val" and _class_names(folder) != classes:
                got = _class_names(folder)
                flat = "a flat folder (no labels)" if _is_flat(o.root) else f"classes {classes}"
                raise BenchError(f"image_folder: `val` folder {folder} has "
                                 f"{'no class sub-folders' if _is_flat(folder) else f'classes {got}'}"
                                 f", `root` is {flat}. Both need the same class sub-folders, or "
                                 "both none.")
            empty = [d.name for d in dirs if not _image_files(d)]
            if empty:
                raise BenchError(f"image_folder: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in "
                                 f"class folder(s) {empty} of {folder}. Add images or remove the folders.")
        if o.image_size is None and _first_image_size(_class_dirs(o.root)) is None:
            raise BenchError(f"image_folder: cannot read any image in {o.root} to infer the image "
                             "size. Set `image_size`, and check the files.")
        if o.group is not None:
            listed = {field: [f for d in _class_dirs(folder) for f in _image_files(d)]
                      for field, folder in self._folders()}
            ids = {field: self._group_ids(folder, listed[field]) for field, folder in self._folders()}
            if o.val is not None:
                self._check_groups_apart(listed["root"], ids["root"], listed["val"], ids["val"])
        self._check_files()

    def _selected(self, folder: Path) -> tuple[list[Path], np.ndarray]:
        """The image files a load reads from `folder` (after `max_per_class`) and their
        class indices, in order."""
        o = self.options
        files: list[Path] = []
        labels: list[int] = []
        for c, d in enumerate(_class_dirs(folder)):
            fs = _image_files(d)
            files += fs
            labels += [c] * len(fs)
        y = np.asarray(labels, dtype=np.int64)
        # subset before decoding: max_per_class exists to make huge folders cheap
        keep = limit_per_class(y, o.max_per_class, o.split_seed)
        return [files[i] for i in keep], y[keep]

    def _check_files(self) -> None:
        """The header of every image a load will read (Pillow's verify, no pixel decoding):
        corrupt or truncated files, a class left without readable images, and differing
        sizes without `image_size` are found by `bench validate`, not minutes into a run."""
        o = self.options
        first = _first_image_size(_class_dirs(o.root)) if o.image_size is None else None
        bad: list[tuple[Path, str]] = []
        for field, folder in self._folders():
            if field == "val" and self._val_is_root():
                continue  # the same files
            files, y = self._selected(folder)
            names = _class_names(folder)
            readable = np.zeros(len(names), dtype=np.int64)
            example: dict[int, Path] = {}  # a bad file of each class
            for (f, hw, err), c in zip(image_headers(files), y, strict=True):
                if hw is None:
                    bad.append((f, err))
                    example.setdefault(int(c), f)
                    continue
                readable[c] += 1
                if first is not None and hw != first:
                    raise BenchError(f"image_folder {folder}: images differ in size ({f} is "
                                     f"{hw[0]}x{hw[1]}, the first image is {first[0]}x{first[1]}). "
                                     "Set `image_size` to resize them all to one square size.")
            unreadable = [c for c in range(len(names)) if readable[c] == 0 and c in example]
            if unreadable and o.skip_bad_files:
                raise BenchError(f"image_folder: no readable images in class folder(s) "
                                 f"{[names[c] for c in unreadable]} of {folder}: every file there "
                                 f"is corrupt, e.g. {example[unreadable[0]]}. Replace the files, "
                                 "or remove the class folders.")
        if bad and not o.skip_bad_files:
            raise BenchError(f"image_folder: {len(bad)} unreadable image file(s) (corrupt or "
                             "truncated):"
                             f"{bad_files_listing(bad, MAX_LISTED)}\n    Delete or replace them, or "
                             "set `skip_bad_files: true` to skip them (the load then reports "
                             "how many it skipped).")

    def _group_ids(self, folder: Path, files: list[Path]) -> list[str]:
        """The `group` id of each file: the regex's first capture group, or its whole match,
        searched in the path relative to `folder` with `/` separators."""
        rx = re.compile(self.options.group or "")
        ids, unmatched = [], []
        for f in files:
            rel = f.relative_to(folder).as_posix()
            m = rx.search(rel)
            if m is None:
                unmatched.append(rel)
            else:
                ids.append(m.group(1) if rx.groups and m.group(1) is not None else m.group(0))
        if unmatched:
            raise BenchError(f"image_folder: {len(unmatched)} of {len(files)} image file(s) in "
                             f"{folder} do not match the `group` regex `{rx.pattern}`, e.g. "
                             f"'{unmatched[0]}' (paths are relative to the folder, with `/`). Change "
                             "the regex so that every file gets a group id, or move those files.")
        return ids

    def describe(self) -> DataInfo:
        o = self.options
        dirs = _class_dirs(o.root) if o.root.is_dir() else []
        if o.image_size is not None:
            h = w = o.image_size
        else:
            hw = _first_image_size(dirs)
            if hw is None:
                raise BenchError(f"image_folder: cannot infer the image size from {o.root}; set "
                                 "`image_size`.")
            h, w = hw
        return DataInfo(o.channels, h, w, len(dirs), labeled=not _is_flat(o.root))

    # ------------------------------------------------------------------ loading
    def _read(self, f: Path, size: tuple[int, int] | None) -> np.ndarray:
        """One image as (H, W) or (H, W, 3) uint8; raises OSError/ValueError when unreadable."""
        from PIL import Image

        with Image.open(f) as opened:
            im: Image.Image = opened
            im = decode_image(im, self.options.channels)  # as the samples model decodes
            if size is not None and im.size != (size[1], size[0]):
                if self.options.image_size is None:
                    raise _SizeMismatch(f"{f} is {im.size[1]}x{im.size[0]}, the first image "
                                        f"is {size[0]}x{size[1]}")
                im = im.resize((size[1], size[0]), Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)

    def _read_all(self, files: list[Path], size: tuple[int, int] | None
                  ) -> Iterator[tuple[Path, np.ndarray | None, str]]:
        """(file, image or None, error) in file order; decoding runs in threads (Pillow
        releases the GIL while decoding), so a folder of JPEGs loads several times faster.
        Files go to the threads `DECODE_WINDOW` at a time, so no more decoded images wait
        than that however large the folder."""
        from PIL import Image

        def one(f: Path) -> tuple[Path, np.ndarray | None, str]:
            try:
                return f, self._read(f, size), ""
            except _SizeMismatch:
                raise
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                return f, None, f"{type(e).__name__}: {e}"

        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            for i in range(0, len(files), DECODE_WINDOW):
                yield from pool.map(one, files[i : i + DECODE_WINDOW])

    def _decode_folder(self, folder: Path, size: tuple[int, int], out: Path
                       ) -> tuple[np.ndarray, list[tuple[Path, str]], list[Path]]:
        """Decode the folder's images into `out`, raw uint8 (C, H, W) rows in file order, one
        image at a time; returns labels, unreadable (file, error) and the files of the rows."""
        files, y_all = self._selected(folder)
        ys, bad, kept = [], [], []
        try:
            with open(out, "wb") as f:
                for (file, img, err), y in zip(self._read_all(files, size), y_all, strict=True):
                    if img is None:
                        bad.append((file, err))
                        continue
                    chw = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
                    f.write(np.ascontiguousarray(chw).data)
                    ys.append(y)
                    kept.append(file)
        except _SizeMismatch as e:
            raise BenchError(f"image_folder {folder}: images differ in size ({e}). Set "
                             "`image_size` to resize them all to one square size.") from None
        return np.asarray(ys, dtype=np.int64), bad, kept

    def _cache_key(self) -> dict[str, Any]:
        """What the decoded images depend on: every option, the folders and their files'
        names, sizes and modification times (`fingerprint`)."""
        return {"options": self.options.model_dump(mode="json"),
                "folders": [str(folder.resolve()) for _, folder in self._folders()],
                "files": self.fingerprint(), "format": FORMAT, "bench": __version__}

    def load(self, cache: Any = None) -> Dataset:
        def decode(path: Path) -> dict[str, Any]:
            self.check()  # only when decoding: a complete entry needs no scan of the folder
            return self._decode(path)

        path, meta = cached(cache if cache is not None else Cache(), "image_folder",
                            self._cache_key(), FORMAT, decode)
        return self._dataset(path, meta, warn=True)

    def _decode(self, path: Path) -> dict[str, Any]:
        """Decode the folder(s), split, and write the cache entry: the images as one .npy
        (training rows, then val rows) and its `.json` (labels, notes, digest) last, so an
        entry without its .json is never read."""
        o = self.options
        names = _class_names(o.root)
        size = ((o.image_size, o.image_size) if o.image_size is not None
                else _first_image_size(_class_dirs(o.root)))
        if size is None:  # check() has refused this already
            raise BenchError(f"image_folder: cannot infer the image size from {o.root}; set "
                             "`image_size`.")
        chw = (o.channels, *size)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f"{path.stem}.decoding.") as tmp:
            root_raw, val_raw = Path(tmp) / "root.raw", Path(tmp) / "val.raw"
            y, bad, files = self._decode_folder(o.root, size, root_raw)
            same = self._val_is_root()
            if same:  # every image is both train and val (`bench score`): decoded and kept once
                vy, vfiles = y, files
            elif o.val is not None:
                vy, vbad, vfiles = self._decode_folder(o.val, size, val_raw)
                bad += vbad
            if bad and not o.skip_bad_files:
                listed = "\n    ".join(f"{f}: {err}" for f, err in bad[:MAX_LISTED])
                more = f"\n    ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
                raise BenchError(f"image_folder: {len(bad)} unreadable image file(s):\n    {listed}"
                                 f"{more}\nRemove or replace them, or set `skip_bad_files: true` to "
                                 "skip them.")
            notes: dict[str, str] = {}
            if bad:
                notes["skipped_files"] = str(len(bad))
            root_rows = _raw_rows(root_raw, len(y), chw)
            if same:
                blocks = [(root_rows, np.arange(len(y)))]
            elif o.val is None and o.group is None:
                tr, va = stratified_split(y, o.val_fraction, o.split_seed)
                blocks = [(root_rows, tr), (root_rows, va)]
                y, vy = y[tr], y[va]
            elif o.val is None:  # every group (e.g. patient) wholly in train or wholly in val
                ids = np.asarray(self._group_ids(o.root, files))
                tr, va = grouped_split(y, ids, o.val_fraction, o.split_seed)
                blocks = [(root_rows, tr), (root_rows, va)]
                y, vy = y[tr], y[va]
                notes["groups"] = (f"{len(set(ids[tr]))} train groups, {len(set(ids[va]))} val "
                                   "groups, none in both")
            else:
                blocks = [(root_rows, np.arange(len(y))),
                          (_raw_rows(val_raw, len(vy), chw), np.arange(len(vy)))]
                if o.group is not None:
                    notes["groups"] = (f"{len(set(self._group_ids(o.root, files)))} train groups, "
                                       f"{len(set(self._group_ids(o.val, vfiles)))} val groups, "
                                       "none in both")
            k = len(names)
            for split, labels in (("train", y), ("val", vy)):
                empty = [names[c] for c in range(k) if not (labels == c).any()]
                if empty:
                    why = (" With `group`, a class needs images of at least two groups, one for "
                           "each side." if o.group is not None else "")
                    raise BenchError(f"image_folder {o.root}: no readable {split} images of "
                                     f"class(es) {empty}. Every class needs images in both "
                                     f"splits; add images, or lower `val_fraction`.{why}")
            rows = len(y) + (0 if same else len(vy))
            atomic_write(path, lambda tmp_npy: write_rows(tmp_npy, (rows, *chw), blocks))
        meta: dict[str, Any] = {"format": FORMAT, "shape": [rows, *chw],
                                "n_train": len(y), "train_y": y.tolist(),
                                "val_y": [] if same else vy.tolist(), "val_is_train": same,
                                "class_names": names, "labeled": not _is_flat(o.root),
                                "notes": notes, "skipped_example": str(bad[0][0]) if bad else ""}
        meta["digest"] = self._dataset(path, meta, warn=False).digest  # one read of the file
        write_meta(path, meta)
        return meta

    def _dataset(self, path: Path, meta: dict[str, Any], warn: bool) -> Dataset:
        """The Dataset over the entry's memory-mapped images (copy-on-write: writing to a
        tensor never changes the file); `warn`: repeat the load's warnings (skipped files,
        imbalance), as every load of the folder gives them."""
        o = self.options
        x = torch.from_numpy(mapped(path))
        n = int(meta["n_train"])
        y = np.asarray(meta["train_y"], dtype=np.int64)
        names = list(meta["class_names"])
        notes = dict(meta["notes"])
        if warn and notes.get("skipped_files"):
            warnings.warn(printable(f"image_folder {o.root}: skipped {notes['skipped_files']} "
                                    f"unreadable image file(s), e.g. {meta['skipped_example']}"),
                          stacklevel=3)
        note = (imbalance_note(f"image_folder {o.root}", np.bincount(y, minlength=len(names)),
                               names) if warn else None)
        if note:
            notes["imbalance"] = note
        same = bool(meta.get("val_is_train"))  # `val` is `root`: the rows once, both splits
        vy = y if same else np.asarray(meta["val_y"], dtype=np.int64)
        ds = Dataset(name=f"image_folder:{o.root.name}", train_x=x[:n], train_y=torch.from_numpy(y),
                     val_x=x[:n] if same else x[n:], val_y=torch.from_numpy(vy),
                     num_classes=len(names), class_names=names,
                     split_key=f"group={o.group}" if o.group is not None else "",
                     labeled=bool(meta.get("labeled", True)))
        ds.notes = notes
        if meta.get("digest"):  # hashed when the entry was written: not read again
            ds.__dict__["digest"] = meta["digest"]
        return ds

    def _val_is_root(self) -> bool:
        o = self.options
        return o.val is not None and o.val.resolve() == o.root.resolve()

    def _check_groups_apart(self, files: list[Path], ids: list[str], vfiles: list[Path],
                            vids: list[str]) -> None:
        """With a `val` folder: no group (patient) may have images in both folders."""
        o = self.options
        assert o.val is not None
        shared = sorted(set(ids) & set(vids))
        if shared:
            ex = (files[ids.index(shared[0])].relative_to(o.root).as_posix(),
                  vfiles[vids.index(shared[0])].relative_to(o.val).as_posix())
            raise BenchError(f"image_folder: {len(shared)} group(s) of the `group` regex have "
                             f"images in both `root` and `val`: {shared[:MAX_LISTED]}, e.g. "
                             f"'{ex[0]}' in {o.root} and '{ex[1]}' in {o.val}. Keep each group's "
                             "images in one folder, or drop `val` and let `group` split `root`.")

    def fingerprint(self) -> dict[str, str]:
        """Names, sizes and modification times of the files: replacing images under the
        same folder makes new cells (a content hash of every image would make validation slow)."""
        import hashlib

        h = hashlib.sha256()
        for _, folder in self._folders():
            if folder.is_dir():
                for f in sorted(folder.rglob("*")):
                    if f.is_file():
                        st = f.stat()
                        h.update(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
        return {"files_sha256": h.hexdigest()[:16]}


class _SizeMismatch(Exception):
    """Two images of different sizes without `image_size`: a user error, reported once."""


def _raw_rows(path: Path, n: int, chw: tuple[int, int, int]) -> np.ndarray:
    """The n decoded (C, H, W) rows of a raw file, memory-mapped (read-only)."""
    if n == 0:
        return np.zeros((0, *chw), np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, *chw))


