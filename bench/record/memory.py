"""Records kept in this process: `MemoryLog`, a SuiteLog (bench.record.suite_log), a
RecordStore (bench.record.writer) and a LeaseStore (bench.record.lease) over plain dicts.

It serves `bench.evaluate`, `bench score` without `--log` and tests: a run computes the same
values as with MLflow (the same runner, workers and writer calls) without creating or
migrating a store. A record is read back through the same tags an MLflow run holds
(`CellRecord.to_mlflow` -> `CellRecord.from_tags`), so what a reader sees is what the MLflow
path gives; its measured values are kept as they are (no flat `.lo`/`.hi` keys: those are
MLflow's encoding, bench.record.values.encode); artifacts (the cells' images) are not kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.record.cell_record import (
    CELL_KEY,
    KIND,
    PARENT_TAG,
    SUITE,
    CellRecord,
    TrainRunRecord,
    error_tags,
)
from bench.record.values import Measured

if TYPE_CHECKING:
    from bench.record.writer import RecordStore


@dataclass
class MemoryRun:
    """One run as MLflow would hold it: status, tags, params, text artifacts; a cell run's
    measured values, a training run's last metrics."""

    status: str
    start_ms: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # training runs' curves
    texts: dict[str, str] = field(default_factory=dict)
    values: dict[str, Measured] = field(default_factory=dict)  # cell runs


class MemoryLog:
    """Runs in a dict, ids `run-0`, `run-1`, ... (thread-safe: the lease beats from a thread).
    Cells can only run in this process (`record_store()` is this object itself)."""

    uri = "memory"
    keeps_artifacts = False  # workers draw no sample grid for it (bench.executors.worker)

    def __init__(self, experiment_id: str = "memory") -> None:
        self.experiment_id = experiment_id
        self.runs: dict[str, MemoryRun] = {}
        self.begun: list[CellRecord] = []  # the records as handed over, in order
        self.finished: list[CellRecord] = []
        self.trained: list[str] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------ runs
    def _new(self, tags: Mapping[str, str], params: Mapping[str, str] | None = None) -> str:
        with self._lock:
            run_id = f"run-{len(self.runs)}"
            self.runs[run_id] = MemoryRun("RUNNING", int(time.time() * 1000), dict(tags),
                                          dict(params or {}))
        return run_id

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        with self._lock:
            self.runs[run_id].tags.update({k: str(v) for k, v in tags.items()})

    def end(self, run_id: str, status: str) -> None:
        with self._lock:
            self.runs[run_id].status = status

    def log_text(self, run_id: str, text: str, name: str) -> None:
        with self._lock:
            self.runs[run_id].texts[name] = text

    def log_files(self, run_id: str, files: dict[str, bytes], artifact_path: str | None = None) -> None:
        pass  # no artifacts kept (only the boards' texts are read back)

    # ------------------------------------------------------------ SuiteLog
    def check_writable(self) -> None:
        pass

    def open_suite(self, run_name: str, tags: Mapping[str, str], params: Mapping[str, str]) -> str:
        return self._new({**tags, "mlflow.runName": run_name}, params)

    def close_suite(self, parent: str, status: str, leaderboard: str) -> None:
        self.end(parent, status)

    def _cells(self, key: str, status: str) -> list[str]:
        with self._lock:
            found = [(r.start_ms, i, rid) for i, (rid, r) in enumerate(self.runs.items())
                     if r.tags.get(KIND) == "cell" and r.tags.get(CELL_KEY) == key
                     and r.status == status]
        return [rid for *_, rid in sorted(found, reverse=True)]  # newest first

    def finished_cell_run(self, key: str) -> str | None:
        found = self._cells(key, "FINISHED")
        return found[0] if found else None

    def fail_stale_runs(self, key: str, reason: str, status: str = "FAILED") -> int:
        stale = self._cells(key, "RUNNING")
        for run_id in stale:
            self.set_tags(run_id, error_tags(reason))
            self.end(run_id, status)
        return len(stale)

    def running_suite_runs(self, suite: str) -> list[tuple[str, dict[str, str], int]]:
        with self._lock:
            return [(rid, dict(r.tags), r.start_ms) for rid, r in self.runs.items()
                    if r.tags.get(KIND) == "suite" and r.tags.get(SUITE) == suite
                    and r.status == "RUNNING"]

    def records(self, run_ids: list[str]) -> list[CellRecord]:
        """FINISHED and FAILED cell runs among `run_ids`, newest first (as Tracker.records)."""
        with self._lock:
            runs = [(rid, self.runs[rid]) for rid in dict.fromkeys(run_ids) if rid in self.runs]
        runs = [(rid, r) for rid, r in runs
                if r.tags.get(KIND) == "cell" and r.status in ("FINISHED", "FAILED")]
        runs.sort(key=lambda x: x[1].start_ms, reverse=True)
        return [CellRecord.from_tags(rid, r.status, r.start_ms, r.tags, r.values) for rid, r in runs]

    def record_store(self) -> RecordStore | None:
        return self

    def artifact_client(self) -> Any | None:
        return None

    def store_fault(self, e: BaseException) -> str | None:
        return None

    # ------------------------------------------------------------ RecordStore
    def begin(self, record: CellRecord) -> str:
        tags = {**record.identity_tags(), "mlflow.runName": record.run_name or record.cell_key}
        if record.parent:
            tags[PARENT_TAG] = record.parent
        record.run_id = self._new(tags, record.params)
        self.begun.append(record)
        return record.run_id

    def finish(self, record: CellRecord) -> None:
        if record.status != "KILLED":  # Ctrl-C: the run ends, nothing half-computed is kept
            tags = {**record.identity_tags(), **record.result_tags()}  # as to_mlflow's
            with self._lock:
                run = self.runs[record.run_id]
                run.params.update(record.params)
                run.values.update(record.values)
                if record.traceback:
                    run.texts["error.txt"] = record.traceback
            self.set_tags(record.run_id, tags)
            self.finished.append(record)
        self.end(record.run_id, record.status)

    def log_trained_model(self, parent: str | None, name: str, key: str, model: Any,
                          history: dict[str, list[float]], params: dict[str, Any]) -> str:
        """A training run's record (its params and final curve values; the model itself is
        the caller's, not kept here)."""
        tags = {**TrainRunRecord(name, key).identity_tags(), **({PARENT_TAG: parent} if parent else {})}
        run_id = self._new(tags, {k: str(v) for k, v in params.items()})
        with self._lock:
            self.runs[run_id].metrics.update({k: float(v[-1]) for k, v in history.items() if v})
        self.end(run_id, "FINISHED")
        self.trained.append(name)
        return run_id


__all__ = ["MemoryLog", "MemoryRun"]
