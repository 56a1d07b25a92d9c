"""Content-addressed on-disk store for work shared by cells (trained classifiers, baselines,
real features and statistics). Keys are hashes of everything that determines the content,
so the cache is always safe to delete. Writes go to a temporary file and are renamed into
place, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from bench.core.disk import disk_full, free_space
from bench.core.errors import BenchError
from bench.core.safe_names import safe_filename

V = TypeVar("V")

DEFAULT_DIR = ".bench_cache"


def atomic_write(path: Path, write: Callable[[str], Any]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place: a crash
    never leaves a half-written entry. The temporary name keeps `path`'s suffix (numpy's and
    torch's writers look at it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp" + path.suffix)
    except OSError as e:
        _raise_full(e, path)
        raise
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save says a full disk as a RuntimeError
        _raise_full(e, path)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class CacheFull(BenchError):
    """The disk under the bench cache is full: one line, said once for the suite."""


def _raise_full(e: BaseException, path: Path) -> None:
    if disk_full(e):
        raise CacheFull(f"disk full: {path.parent}, {free_space(path.parent)} free (the bench cache: "
                        "--cache-dir / BENCH_CACHE_DIR); free some space or point the cache at "
                        "another disk, then run the suite again") from None


def stable_hash(obj: Any, n: int = 16) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


class Cache:
    def __init__(self, root: str | os.PathLike | None = None):
        from bench.core.settings import settings

        self.root = Path(root or settings().cache_dir)
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()

    def path(self, kind: str, key: Any, suffix: str = "") -> Path:
        """The entry of `key` in the folder of `kind`. The file name is a hash; the kind is a
        plugin's word (`real_classifier`, `cgan`), made one safe folder name all the same."""
        return self.root / safe_filename(kind) / f"{stable_hash(key)}{suffix}"

    def hit(self, kind: str) -> None:
        self.hits[kind] += 1

    def miss(self, kind: str) -> None:
        self.misses[kind] += 1

    @contextmanager
    def lock(self, path: Path) -> Iterator[None]:
        """Hold while checking for and computing an entry: a second process (worker, Ray
        task, Slurm job) needing the same entry waits, then reads it, instead of racing."""
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock"):
            yield

    def entry(self, path: Path, kind: str, load: Callable[[Path], V], compute: Callable[[], V],
              save: Callable[[Path, V], None]) -> V:
        """The entry at `path` (`load`), else `compute()`d and `save`d, under the entry's file
        lock (a second worker waits, then reads), counted as a hit or a miss of `kind`. An
        entry that cannot be read back (truncated, another format) is recomputed, never
        trusted."""
        with self.lock(path):
            if path.exists():
                try:
                    value = load(path)
                except Exception:  # noqa: BLE001 - any unreadable entry: computed again
                    pass
                else:
                    self.hit(kind)
                    return value
            self.miss(kind)
            value = compute()
            save(path, value)
            return value

    def save_torch(self, path: Path, obj: Any) -> None:
        atomic_write(path, lambda tmp: torch.save(obj, tmp))

    def report(self) -> str:
        kinds = sorted(set(self.hits) | set(self.misses))
        if not kinds:
            return "cache: unused"
        parts = [f"{k} {self.hits[k]} hit / {self.misses[k]} miss" for k in kinds]
        return f"cache ({self.root}): " + ", ".join(parts)
