"""Fakes of the record store's declared interfaces (bench.record.writer.RecordStore,
bench.record.lease.LeaseStore): each implements every method of its Protocol with the same
parameters, and tests/test_record_faults.py checks that, so an interface change breaks them
instead of being absorbed by a catch-all."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from bench.record.cell_record import CellRecord
from bench.record.memory import MemoryLog
from bench.record.writer import RecordError


class MemoryRecords(MemoryLog):
    """The in-memory log (bench.record.memory.MemoryLog) with faults: `fail` names calls
    ("begin", "finish") that raise RecordError with `reason`, as a store that went away."""

    def __init__(self, fail: tuple[str, ...] = (), reason: str = "store gone"):
        super().__init__()
        self.fail, self.reason = set(fail), reason

    def _check(self, call: str) -> None:
        if call in self.fail:
            raise RecordError(self.reason)

    def begin(self, record: CellRecord) -> str:
        self._check("begin")
        return super().begin(record)

    def finish(self, record: CellRecord) -> None:
        self._check("finish")
        super().finish(record)


class MemoryLeases:
    """A LeaseStore over a dict of suite runs: run id -> (suite, status, tags, start ms)."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[str, str, dict[str, str], int]] = {}

    def running_suite_runs(self, suite: str) -> list[tuple[str, dict[str, str], int]]:
        return [(rid, dict(tags), start) for rid, (s, status, tags, start) in self.runs.items()
                if s == suite and status == "RUNNING"]

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self.runs[run_id][2].update({k: str(v) for k, v in tags.items()})

    def end(self, run_id: str, status: str) -> None:
        s, _, tags, start = self.runs[run_id]
        self.runs[run_id] = (s, status, tags, start)


def same_interface(fake: type, protocol: type) -> list[str]:
    """The Protocol's methods that `fake` lacks or declares with other parameters."""
    problems = []
    for name, member in vars(protocol).items():
        if name.startswith("_") or not callable(member):
            continue
        mine = getattr(fake, name, None)
        if mine is None:
            problems.append(f"{name}: missing")
        elif list(inspect.signature(mine).parameters) != list(inspect.signature(member).parameters):
            problems.append(f"{name}: {inspect.signature(mine)} != {inspect.signature(member)}")
    return problems
