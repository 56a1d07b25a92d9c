"""Progress bars: shown on a terminal, silent in logs and CI (tqdm's disable=None), and only
for work that lasts: a bar appears after DELAY seconds, with tqdm's estimate of the time
left, so quick steps print nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

DELAY = 2.0  # seconds before a bar is drawn


def bar(it: Iterable[Any], desc: str, enabled: bool = True, **kw: Any) -> tqdm:
    kw.setdefault("delay", DELAY)
    return tqdm(it, desc=desc, leave=False, disable=None if enabled else True, **kw)
