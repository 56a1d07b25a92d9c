"""Progress bars: shown on a terminal, silent in logs and CI (tqdm's disable=None)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def bar(it: Iterable[Any], desc: str, enabled: bool = True, **kw: Any) -> tqdm:
    return tqdm(it, desc=desc, leave=False, disable=None if enabled else True, **kw)
