"""Decoded datasets as memory-mapped cache entries: the images of both splits as one uint8
`.npy` (training rows, then val rows) and a `.json` of labels and metadata written last, so
an entry without its `.json` is never read. image_folder decodes its files into one,
torchvision sets parse theirs into one; every later load maps the file (the kernel's page
cache, not a private copy of the set)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.infra.cache import Cache, atomic_write

COPY_ROWS = 4096  # images per block when rows are copied into the entry's file


def write_rows(path: str, shape: tuple[int, ...], blocks: list[tuple[np.ndarray, np.ndarray]]
               ) -> None:
    """A uint8 .npy of `shape`: the rows `index` of each (rows, index) block in turn, copied
    `COPY_ROWS` at a time (plain writes: a full disk is an OSError, not a crash)."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                "fortran_order": False, "shape": tuple(int(v) for v in shape)})
        for rows, index in blocks:
            for i in range(0, len(index), COPY_ROWS):
                f.write(np.ascontiguousarray(rows[index[i : i + COPY_ROWS]]).data)


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """The entry's `.json`, written after its images."""
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(meta)))


def read_entry(path: Path, fmt: str) -> dict[str, Any] | None:
    """The metadata of a complete entry of format `fmt`, or None (absent, damaged or another
    format: made again, never trusted)."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != fmt or arr.dtype != np.uint8 \
            or list(arr.shape) != meta.get("shape") \
            or len(meta.get("train_y", ())) + len(meta.get("val_y", ())) != arr.shape[0]:
        return None
    return meta


def cached(cache: Cache, kind: str, key: dict[str, Any], fmt: str,
           make: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The entry of `kind` under `key` (its .npy path and metadata): read when complete,
    else made by `make(path)`, which writes the .npy, then the .json, and returns the
    metadata; under the cache's lock and hit/miss counts (`Cache.entry`)."""
    path = cache.path(kind, key, ".npy")

    def load(p: Path) -> dict[str, Any]:
        meta = read_entry(p, fmt)
        if meta is None:
            raise ValueError(f"incomplete {kind} entry {p}")
        return meta

    return path, cache.entry(path, kind, load, lambda: make(path), lambda p, meta: None)


def mapped(path: Path) -> np.ndarray:
    """The entry's images, memory-mapped copy-on-write (writing to them never changes the file)."""
    return np.load(path, mmap_mode="c", allow_pickle=False)
