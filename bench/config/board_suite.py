"""What a board needs from a suite file, read without the plugins.

`bench leaderboard SUITE.yaml` needs the suite's name, experiment and store, the (dataset,
model) rows it declares and its `published:` blocks. `load_suite` validates every plugin
entry, which imports the plugin packages (torch, the suite's own modules: seconds and
hundreds of MiB) for a board that runs nothing. This reads the YAML and those keys only.
A file it does not find plain and well formed goes through `load_suite` instead, whose
messages name the line and the fix (`bench validate` checks the rest of a file).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from bench.config.published import PublishedBlock

if TYPE_CHECKING:
    from bench.config.suite import Suite

__all__ = ["BoardSuite", "declared_rows", "read_board_suite"]

_NAME = re.compile(r"^[\w.-]+$")  # SuiteFile.name's pattern
_BLOCK_KEYS = {"models", "datasets", "metrics", "exclude"}
_RULE_KEYS = {"model", "dataset", "metric"}


@dataclass(frozen=True)
class BoardSuite:
    name: str
    experiment: str
    tracking_uri: str | None
    declared: frozenset[tuple[str, str]]  # (dataset, model): the rows of the board
    published: list[PublishedBlock] = field(default_factory=list)


def read_board_suite(path: str | Path) -> BoardSuite:
    """The board's view of the suite file at `path` (see the module's doc)."""
    try:
        view = _plain_view(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError, RecursionError):
        view = None
    if view is not None:
        return view
    from bench.config.suite import load_suite  # reports what is wrong, or reads a valid oddity

    suite = load_suite(path, check_resources=False)
    return BoardSuite(suite.name, suite.experiment, suite.tracking_uri, declared_rows(suite),
                      list(suite.published))


def declared_rows(suite: BoardSuite | Suite) -> frozenset[tuple[str, str]]:
    """The (dataset, model) pairs a suite declares, from either view of it."""
    if isinstance(suite, BoardSuite):
        return suite.declared
    return frozenset((c.dataset.key, c.model.key) for c in suite.cells)


def _plain_view(text: str) -> BoardSuite | None:
    """None unless every key the board reads has the shape load_suite accepts."""
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        return None
    name, experiment, uri = data.get("name"), data.get("experiment"), data.get("tracking_uri")
    if not (isinstance(name, str) and _NAME.match(name)) or not _opt_str(experiment, uri):
        return None
    pools = {k: data.get(k) for k in ("models", "datasets", "metrics")}
    if not all(isinstance(p, dict) and p and all(isinstance(n, str) for n in p) for p in pools.values()):
        return None
    blocks = data.get("cells", [{}])
    if not isinstance(blocks, list) or not blocks:
        return None
    declared: set[tuple[str, str]] = set()
    for block in blocks:
        pairs = _block_pairs(block, pools)
        if pairs is None:
            return None
        declared |= pairs
    raw = data.get("published") or []
    if not isinstance(raw, list):
        return None
    published = [PublishedBlock.model_validate(b) for b in raw]
    return BoardSuite(name, experiment or name, uri, frozenset(declared), published)


def _opt_str(*values: Any) -> bool:
    return all(v is None or isinstance(v, str) for v in values)


def _names(sel: Any, pool: dict[str, Any]) -> list[str] | None:
    if sel == "all":
        return list(pool)
    if isinstance(sel, list) and all(isinstance(n, str) and n in pool for n in sel):
        return sel
    return None


def _block_pairs(block: Any, pools: dict[str, Any]) -> set[tuple[str, str]] | None:
    """The (dataset, model) pairs a `cells` block keeps (a pair with any metric left after
    its `exclude` rules); None for a block load_suite would refuse."""
    if not isinstance(block, dict) or not set(block) <= _BLOCK_KEYS:
        return None
    sel = {k: _names(block.get(k, "all"), pools[k]) for k in ("models", "datasets", "metrics")}
    rules = block.get("exclude", [])
    if any(v is None for v in sel.values()) or not isinstance(rules, list):
        return None
    kinds = {"model": "models", "dataset": "datasets", "metric": "metrics"}
    for r in rules:
        if not (isinstance(r, dict) and set(r) <= _RULE_KEYS
                and all(v is None or (isinstance(v, str) and v in pools[kinds[k]])
                        for k, v in r.items())):
            return None
    return {(d, m) for d in _iter(sel["datasets"]) for m in _iter(sel["models"])
            if any(not _excluded(rules, m, d, t) for t in _iter(sel["metrics"]))}


def _iter(names: list[str] | None) -> Iterable[str]:
    return names or []


def _excluded(rules: list[dict[str, str | None]], m: str, d: str, t: str) -> bool:
    return any(r.get("model") in (None, m) and r.get("dataset") in (None, d)
               and r.get("metric") in (None, t) for r in rules)
