"""How much memory a metric's size options imply, and how much the machine has: `bench
validate` refuses `num_samples: 1000000000000` with the numbers, instead of a run that dies
(or swaps for an hour) once the generator is asked for that many images.

The estimate is a lower bound: the generated images a metric holds at once (uint8 N x C x H x
W) and their features (float32, where the extractor's width is known), nothing else. A
suite is refused only when that alone exceeds the memory available, so a refusal is never
a false alarm.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.base import DataInfo

# feature widths of the extractors whose width does not depend on their options
FEATURE_DIMS = {"inception": 2048}
# options that set how many generated images a metric holds at once
COUNT_OPTIONS = ("num_samples", "num_generated", "sizes")
# metrics that sample `num_samples` batch by batch (the count sets the time, not the memory);
# a plugin can also say so itself with a class attribute `streams_num_samples = True`
STREAMS_NUM_SAMPLES = {"ppl"}
# cells run on other machines (Slurm, a Ray cluster): their memory is unknown here, so only
# what no single machine has is refused
REMOTE_LIMIT = 4 << 40


@dataclass(frozen=True)
class Need:
    option: str  # the option that implies it (`num_samples`, `per_class`)
    count: int  # generated images held at once
    image_bytes: int
    feature_bytes: int
    features: str | None  # the extractor whose features are counted

    @property
    def total(self) -> int:
        return self.image_bytes + self.feature_bytes

    @property
    def per_image(self) -> int:
        return max(1, self.total // max(1, self.count))


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def implied(metric_cls: type, options: Any, info: DataInfo) -> list[Need]:
    """The memory each size option of a metric implies on a dataset of `info`'s shape."""
    c, h, w = info.image_shape
    spec = getattr(options, "features", None)
    name = getattr(spec, "name", None)
    dim = FEATURE_DIMS.get(name) if isinstance(name, str) else None
    streamed = getattr(metric_cls, "streams_num_samples",
                       getattr(metric_cls, "name", "") in STREAMS_NUM_SAMPLES)
    out = []
    for opt in COUNT_OPTIONS:
        if opt == "num_samples" and streamed:
            continue
        v = getattr(options, opt, None)
        n = max(v) if isinstance(v, list) and v else v
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            out.append(Need(opt, n, n * c * h * w, n * dim * 4 if dim else 0,
                            name if dim else None))
    per_class = getattr(options, "per_class", None)
    if isinstance(per_class, int) and not isinstance(per_class, bool) and per_class > 0:
        n = per_class * info.num_classes
        out.append(Need("per_class", n, n * c * h * w, 0, None))
    return out


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> tuple[int, str] | None:
    """(bytes available now, where the number comes from), or None when unknown: psutil when
    installed, else /proc/meminfo or sysconf, lowered to a cgroup (container) limit."""
    found: list[tuple[int, str]] = []
    try:
        psutil = importlib.import_module("psutil")  # optional: not a dependency
        found.append((int(psutil.virtual_memory().available), "available memory (psutil)"))
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    found.append((int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"))
                    break
        except (OSError, ValueError, IndexError):
            pass
        if not found:
            try:
                pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
                if pages > 0:
                    found.append((pages, "free memory (sysconf)"))
            except (ValueError, OSError, AttributeError):
                pass
    limit = _read_int("/sys/fs/cgroup/memory.max")  # cgroup v2; "max" (no limit) reads None
    used = _read_int("/sys/fs/cgroup/memory.current")
    if limit is None:  # cgroup v1
        limit = _read_int("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        used = _read_int("/sys/fs/cgroup/memory/memory.usage_in_bytes")
    if limit is not None and limit < (1 << 60):  # v1 says "no limit" with a huge number
        found.append((max(0, limit - (used or 0)), "the container's memory limit (cgroup)"))
    return min(found) if found else None


def runs_here(executor: Any) -> bool:
    """Whether the executor runs cells on this machine (so its memory is what they get)."""
    if executor is None or executor.name == "local":
        return True
    opts = executor.options
    if executor.name == "ray":
        return getattr(opts, "address", None) in (None, "", "local")
    if executor.name == "slurm":
        return getattr(opts, "cluster", "slurm") in ("local", "debug")
    return False


def memory_limit(executor: Any) -> tuple[int, str] | None:
    """The memory a cell may use at most, and a phrase saying whose it is."""
    if not runs_here(executor):
        return REMOTE_LIMIT, (f"the {fmt_bytes(REMOTE_LIMIT)} assumed for a machine of the "
                              f"'{executor.name}' executor (the largest there is: its real "
                              "memory is not known here)")
    got = available_memory()
    if got is None:
        return None
    n, where = got
    return n, f"the {fmt_bytes(n)} this machine has available ({where})"
