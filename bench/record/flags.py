"""Flags: evidence that a model's output or behaviour is broken, copied or label-blind.

A flag is part of a cell's record (bench.record.cell_record.CellRecord.flags, logged as the
`bench.flags` tag, a JSON list). Where it comes from:

- the output checks on every generated stream (bench.infra.output_checks): values outside
  the declared `output_range`, saturation, (near-)constant output. Non-finite output is not
  a flag: it fails the model's cells with one message.
- a metric's own evidence (`Context.flag`): GAN-test near chance while the images are
  recognisable (the model ignores its labels), a balancing gain that may leak.
- the board's gates (bench.report.gates), evaluated on the values of a table: copying the training
  data (C_T, authenticity against the held-out real row).

`gate=True`: the flag keeps the model below every model that passes (docs/leaderboard.md);
`gate=False`: a warning shown beside the value, never reordering anything.

Pure Python (no torch): the leaderboard imports it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Flag:
    kind: str  # short machine name: output_range, saturated, constant, ignores_labels, copies, ...
    reason: str  # one line for people, with the numbers behind it
    gate: bool = True  # keeps the model below every model that passes
    value: str = ""  # the value it concerns ("" = the whole model)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v != ""}

    @classmethod
    def from_json(cls, d: dict) -> Flag:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def text(self) -> str:
        return f"{self.kind}: {self.reason}"


def dumps(flags: list[Flag]) -> str:
    return json.dumps([f.to_json() for f in flags], sort_keys=True)


def loads(tag: str | None) -> list[Flag]:
    if not tag:
        return []
    try:
        return [Flag.from_json(d) for d in json.loads(tag)]
    except (ValueError, TypeError):
        return [Flag("unreadable_flags", f"the bench.flags tag could not be read: {tag[:80]}", True)]


def merge(*groups: list[Flag]) -> list[Flag]:
    """Flags of several sources, each (kind, value) once, first reason kept."""
    seen: dict[tuple[str, str], Flag] = {}
    for g in groups:
        for f in g:
            seen.setdefault((f.kind, f.value), f)
    return list(seen.values())
