"""What a failed write means when it is the disk: a full disk (any layer's writes: the cache,
the spool, the tracking store) and the free space to name in the message."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

# torch.save's writer reports a failed write as a RuntimeError without an errno (out of space
# is by far its most common cause; the message names the free space so the reader can judge)
_FULL_TEXT = ("database or disk is full", "no space left on device", "file write failed",
              "disk quota exceeded")


def disk_full(e: BaseException) -> bool:
    """An OSError ENOSPC/EDQUOT, SQLite's "database or disk is full" (through SQLAlchemy and
    MLflow) or torch's "file write failed", anywhere in the exception's chain."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(cur).lower()
        if any(t in text for t in _FULL_TEXT):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def free_space(path: Path) -> str:
    """Free space of the filesystem holding `path` (its nearest existing folder), readable."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        free = float(shutil.disk_usage(p).free)
    except OSError:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if free < 1024 or unit == "TiB":
            return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
        free /= 1024
    return "unknown"
