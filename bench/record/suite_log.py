"""What the runner needs of a record store for one suite run: `SuiteLog`.

The runner (bench.run.runner) asks a suite log for the finished run of a cell key (resume),
marks stale RUNNING runs, holds the suite's lease through it (it is a
bench.record.lease.LeaseStore), opens and closes the parent run, logs cells.json and the
boards as texts, and reads the cell records back. Two implementations:

- `MlflowSuiteLog` (here): a Tracker's experiment, for `bench run` and `log=True`;
- `MemoryLog` (bench.record.memory): plain Python objects of this process, for
  `bench.evaluate`, `bench score` without `--log` and tests (no store to create or migrate).

Cells write their records through a `RecordStore` (bench.record.writer): `record_store()` is
the one a log hands to workers in this process; None means the workers write to `uri`
themselves (an MLflow store every process can reach).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bench.record.cell_record import CellRecord

if TYPE_CHECKING:
    from bench.record.tracking import Tracker
    from bench.record.writer import RecordStore

@runtime_checkable
class SuiteLog(Protocol):
    """The record store as one suite run sees it (tests/test_suite_log.py checks that both
    implementations declare every method with these parameters)."""

    uri: str  # where the records go, as the console says it ("memory": this process only)
    experiment_id: str

    def check_writable(self) -> None:
        """Before any run exists: raise BenchError when the records could not be kept."""
        ...

    def open_suite(self, run_name: str, tags: Mapping[str, str], params: Mapping[str, str]) -> str:
        """The suite's parent run (created, or the one an outer `mlflow run` made); its id."""
        ...

    def close_suite(self, parent: str, status: str, leaderboard: str) -> None:
        """End the parent run with `status` (unless it belongs to an outer `mlflow run`)."""
        ...

    def finished_cell_run(self, key: str) -> str | None:
        """The newest FINISHED run of a cell key (resume), or None."""
        ...

    def fail_stale_runs(self, key: str, reason: str, status: str = "FAILED") -> int:
        """End the RUNNING runs of a cell key with `status` and `reason`; how many."""
        ...

    def running_suite_runs(self, suite: str) -> list[tuple[str, dict[str, str], int]]:
        """(run id, tags, start ms) of the suite's RUNNING suite runs (the lease)."""
        ...

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None: ...

    def end(self, run_id: str, status: str) -> None: ...

    def log_text(self, run_id: str, text: str, name: str) -> None:
        """A text artifact of a run (suite.yaml, cells.json, summary.md, leaderboard.md)."""
        ...

    def log_files(self, run_id: str, files: dict[str, bytes], artifact_path: str | None = None) -> None:
        ...

    def records(self, run_ids: list[str]) -> list[CellRecord]:
        """The cell records of these runs (FINISHED and FAILED), as read back."""
        ...

    def record_store(self) -> RecordStore | None:
        """The RecordStore for cells run in this process; None: workers write to `uri`."""
        ...

    def artifact_client(self) -> Any | None:
        """An MlflowClient-like object the HTML board and the figures read the cells' images
        through (bench.report.html.mlflow_access); None: the log keeps no artifacts."""
        ...

    def store_fault(self, e: BaseException) -> str | None:
        """A write's failure as "disk full: ..." when it is the disk; else None."""
        ...


class MlflowSuiteLog:
    """`SuiteLog` over a Tracker (one MLflow experiment). `outer`: the run an outer `mlflow
    run` made ($MLFLOW_RUN_ID, read by the caller): attached to when it is in this
    experiment, else linked to the suite's own parent run both ways."""

    def __init__(self, tracker: Tracker, experiment: str, outer: str | None = None):
        self.tracker, self.experiment, self.outer = tracker, experiment, outer
        self.uri, self.experiment_id = tracker.uri, tracker.experiment_id
        self.attached = False

    def check_writable(self) -> None:
        self.tracker.check_artifacts_writable()

    def open_suite(self, run_name: str, tags: Mapping[str, str], params: Mapping[str, str]) -> str:
        t = self.tracker
        if self.outer and t.run_experiment(self.outer) == t.experiment_id:
            self.attached = True
            # never re-log the params `mlflow run` logged (immutable); give it the suite's name
            t.set_tags(self.outer, {**tags, "mlflow.runName": run_name})
            return self.outer
        parent = t.create_parent(run_name, dict(tags))
        t.log_params(parent, dict(params))
        if self.outer:
            t.link_outer_run(self.outer, parent, self.experiment)
        return parent

    def close_suite(self, parent: str, status: str, leaderboard: str) -> None:
        if self.attached:  # `mlflow run` ends its own run
            return
        if self.outer:
            self.tracker.log_text(self.outer, leaderboard or "(no finished runs)\n", "leaderboard.md")
        self.tracker.end(parent, status)

    def finished_cell_run(self, key: str) -> str | None:
        return self.tracker.finished_cell_run(key)

    def fail_stale_runs(self, key: str, reason: str, status: str = "FAILED") -> int:
        return self.tracker.fail_stale_runs(key, reason, status)

    def running_suite_runs(self, suite: str) -> list[tuple[str, dict[str, str], int]]:
        return self.tracker.running_suite_runs(suite)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self.tracker.set_tags(run_id, tags)

    def end(self, run_id: str, status: str) -> None:
        self.tracker.end(run_id, status)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.tracker.log_text(run_id, text, name)

    def log_files(self, run_id: str, files: dict[str, bytes], artifact_path: str | None = None) -> None:
        self.tracker.log_files(run_id, files, artifact_path)

    def records(self, run_ids: list[str]) -> list[CellRecord]:
        return self.tracker.records(run_ids=run_ids, failed=True) if run_ids else []

    def record_store(self) -> RecordStore | None:
        return None  # each worker opens its own RecordWriter on `uri`

    def artifact_client(self) -> Any | None:
        return self.tracker.client

    def store_fault(self, e: BaseException) -> str | None:
        return self.tracker.store_fault(e)


__all__ = ["MlflowSuiteLog", "SuiteLog"]
