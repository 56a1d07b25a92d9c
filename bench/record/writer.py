"""The one writer of cell records: a worker computes a `CellRecord` and hands it over; only
`RecordWriter` turns it into an MLflow run (through bench.record.tracking.Tracker).

Two calls per cell: `begin` creates the RUNNING run (identity tags, the params known before
any work) so that a runner killed mid-cell leaves a run the next runner recognises as stale;
`finish` writes the rest (dataset input, params known after loading the data, values, result
tags, artifacts, error.txt) and ends it with the record's status.

A write that fails is reported by what it is: a full disk as "disk full: <path>, <free>
free" (and the run is ended FAILED with that reason when the store still takes that much);
anything else as the store's own error. MLflow's SQL store logs a traceback for every failed
statement before it raises: those logs are silenced here, the exception says it once.

`RecordStore` is the interface the worker sees (tests fake it by implementing it).
"""

from __future__ import annotations

import traceback as tb
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bench.core.errors import BenchError
from bench.record.cell_record import FAILED, CellRecord, error_tags

if TYPE_CHECKING:
    from bench.record.tracking import Tracker


class RecordError(BenchError):
    """A record could not be written; the message says why (disk full, store unreachable)."""


@runtime_checkable
class RecordStore(Protocol):
    """What computing a cell needs of the record store (tests/record_fakes.py implements it,
    checked against this declaration by tests/test_record_faults.py)."""

    def begin(self, record: CellRecord) -> str:
        """Create the cell's RUNNING run; returns its id (also set as `record.run_id`).
        Raises RecordError when the store cannot be written."""
        ...

    def finish(self, record: CellRecord) -> None:
        """Write the computed record and end its run with `record.status`. Raises RecordError."""
        ...

    def log_trained_model(self, parent: str | None, name: str, key: str, model: Any,
                          history: dict[str, list[float]], params: dict[str, Any]) -> str:
        """A trained baseline's own run (bench.record.tracking.Tracker.log_trained_model)."""
        ...


class RecordWriter:
    """`RecordStore` over a Tracker (MlflowClient with explicit run ids)."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker
        self._params: dict[str, set[str]] = {}  # params already written, per run

    def _why(self, e: BaseException, doing: str) -> str:
        full = self.tracker.store_fault(e)
        if full is not None:
            return full
        return (f"tracking store unreachable after retries ({type(e).__name__}: "
                f"{_first_line(e)}) while {doing}")

    def begin(self, record: CellRecord) -> str:
        from bench.record.tracking import quiet_store_logs

        try:
            with quiet_store_logs():
                run_id = self.tracker.create_run(record.run_name or record.cell_key,
                                                 record.identity_tags(), record.parent or None)
        except Exception as e:  # noqa: BLE001 - MLflow's client already retried with backoff
            raise RecordError(f"{self._why(e, 'creating the run')}; the cell did not run. Check "
                              "the tracking store, then run the suite again.") from None
        record.run_id = run_id
        try:
            with quiet_store_logs():
                self._write_params(record)
        except Exception as e:  # noqa: BLE001 - any store fault becomes one RecordError, the run failed
            self._fail_run(record, self._why(e, "writing its params"))
            raise RecordError(f"{self._why(e, 'writing its params')}; the cell did not run.") from None
        return run_id

    def _write_params(self, record: CellRecord) -> None:
        done = self._params.setdefault(record.run_id, set())
        new = {k: v for k, v in record.params.items() if k not in done}
        if new:
            self.tracker.log_params(record.run_id, new)
            done.update(new)

    def finish(self, record: CellRecord) -> None:
        from bench.record.tracking import quiet_store_logs

        t = self.tracker
        try:
            with quiet_store_logs():
                if record.status == "KILLED":  # Ctrl-C: end the run, nothing half-computed
                    t.end(record.run_id, "KILLED")
                    return
                self._write_params(record)
                if record.dataset_input is not None:
                    d = record.dataset_input
                    t.log_dataset(record.run_id, d.name, d.digest, d.splits, d.source)
                tags, _, metrics = record.to_mlflow()
                if metrics:
                    t.log_metrics(record.run_id, metrics)
                t.set_tags(record.run_id, record.result_tags())
                if record.traceback:
                    t.log_text(record.run_id, record.traceback, "error.txt")
                if record.artifacts:
                    t.log_artifacts(record.run_id, Path(record.artifacts))
                t.end(record.run_id, record.status)
        except Exception as e:  # noqa: BLE001 - any store fault becomes one RecordError, as above
            why = self._why(e, "recording the cell")
            if record.status != FAILED or self.tracker.store_fault(e) is not None:
                self._fail_run(record, why)
            raise RecordError(why) from None
        finally:
            self._params.pop(record.run_id, None)

    def _fail_run(self, record: CellRecord, reason: str) -> None:
        """End the run FAILED with `reason`, where the store still takes that much."""
        from bench.record.tracking import quiet_store_logs

        try:
            with quiet_store_logs():
                self.tracker.set_tags(record.run_id, error_tags(reason))
                self.tracker.end(record.run_id, FAILED)
        except Exception:  # noqa: BLE001 - the next run of the suite marks it FAILED
            pass

    def log_trained_model(self, parent: str | None, name: str, key: str, model: Any,
                          history: dict[str, list[float]], params: dict[str, Any]) -> str:
        return self.tracker.log_trained_model(parent, name, key, model, history, params)


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else "".join(tb.format_exception_only(type(e), e)).strip())[:300]


__all__ = ["RecordError", "RecordStore", "RecordWriter"]
