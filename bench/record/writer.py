"""The one writer of cell records: a worker computes a `CellRecord` and hands it over; only
`RecordWriter` turns it into an MLflow run (through bench.record.tracking.Tracker).

Two calls per cell: `begin` creates the RUNNING run (identity tags, the params known before
any work) so that a runner killed mid-cell leaves a run the next runner recognises as stale;
`finish` writes the rest (dataset input, params known after loading the data, values, result
tags, artifacts, error.txt) and ends it with the record's status.

A write that fails is reported by what it is: a full disk as "disk full: <path>, <free>
free" and an artifact folder that refuses writes as such (the run is ended FAILED with that
reason when the store still takes that much); anything else as the store's own error. An
unreachable store is waited for (bench.record.outage: said once, retried with backoff for
BENCH_STORE_PATIENCE_S); past that, a finished cell's record is kept on disk
(bench.record.spool, `RecordKept`) and written when the store is back: nothing computed is lost. MLflow's SQL store logs a traceback for every failed
statement before it raises: those logs are silenced here, the exception says it once.

`RecordStore` is the interface the worker sees (tests fake it by implementing it).
"""

from __future__ import annotations

import errno
import os
import traceback as tb
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bench.core.errors import BenchError
from bench.record.cell_record import FAILED, FINISHED, CellRecord, error_tags
from bench.record.outage import StoreUnreachable, transient
from bench.record.spool import Spool

if TYPE_CHECKING:
    from bench.record.tracking import Tracker


class RecordError(BenchError):
    """A record could not be written; the message says why (disk full, store unreachable)."""


class RecordKept(RecordError):
    """The store is unreachable; the finished record is kept on disk (bench.record.spool) and
    written when the store answers again. The cell's values are safe."""


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

    def __init__(self, tracker: Tracker, spool: Spool | None = None):
        self.tracker = tracker
        self.spool = spool  # where finished records wait out an outage (None: nowhere)
        self._params: dict[str, set[str]] = {}  # params already written, per run

    def _why(self, e: BaseException, doing: str) -> str:
        full = self.tracker.store_fault(e)
        if full is not None:
            return full
        if (denied := artifact_denied(e)) is not None:
            return (f"the artifact folder {denied} is read-only ({_first_line(e)}) while {doing}: "
                    "make it writable (the experiment keeps its artifact root), or use another "
                    "tracking store or experiment")
        if isinstance(e, StoreUnreachable) or transient(e):
            cause = e.__cause__ if isinstance(e, StoreUnreachable) and e.__cause__ else e
            return (f"tracking store {self.tracker.uri} unreachable ({type(cause).__name__}: "
                    f"{_first_line(cause)}) while {doing}")
        return (f"tracking store error ({type(e).__name__}: {_first_line(e)}) while {doing}")

    def _patience(self) -> AbstractContextManager[None]:
        """Once an outage is known, a cell's writes try once (the cell goes on, its record is
        kept); the first write to meet it waits the whole patience."""
        outage = self.tracker.outage
        return outage.within(0) if outage.down and self.spool is not None else nullcontext()

    def begin(self, record: CellRecord) -> str:
        from bench.record.tracking import quiet_store_logs

        try:
            with quiet_store_logs(), self._patience():
                run_id = self.tracker.create_run(record.run_name or record.cell_key,
                                                 record.identity_tags(), record.parent or None)
        except StoreUnreachable as e:
            if self.spool is not None:  # computed all the same; `finish` creates the run later
                record.run_id = ""
                return ""
            raise RecordError(f"{self._why(e, 'creating the run')}; the cell did not run. Check "
                              "the tracking store, then run the suite again.") from None
        except Exception as e:  # noqa: BLE001 - any store fault becomes one RecordError
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
            with quiet_store_logs(), self._patience():
                if record.status == "KILLED":  # Ctrl-C: end the run, nothing half-computed
                    if record.run_id:
                        t.end(record.run_id, "KILLED")
                    return
                if not record.run_id:  # begun during an outage: the run is made now
                    record.run_id = t.create_run(record.run_name or record.cell_key,
                                                 record.identity_tags(), record.parent or None)
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
            if isinstance(e, StoreUnreachable) and record.status == FINISHED and self.spool is not None:
                try:
                    where = self.spool.save(record)
                except OSError as keep_err:  # e.g. the cache disk is full too
                    why += f"; the record could not be kept on disk either ({keep_err})"
                else:
                    raise RecordKept(f"{e}: the finished cell is kept in {where} and written "
                                     "when the store is back") from None
            if not isinstance(e, StoreUnreachable) and (
                    record.status != FAILED or self.tracker.store_fault(e) is not None):
                self._fail_run(record, why)  # (an unreachable store: the next run marks it)
            raise RecordError(why) from None
        finally:
            self._params.pop(record.run_id, None)

    def _fail_run(self, record: CellRecord, reason: str) -> None:
        """End the run FAILED with `reason`, where the store still takes that much."""
        from bench.record.tracking import quiet_store_logs

        if not record.run_id:
            return
        try:
            with quiet_store_logs(), self.tracker.outage.within(0):
                self.tracker.set_tags(record.run_id, error_tags(reason))
                self.tracker.end(record.run_id, FAILED)
        except Exception:  # noqa: BLE001 - the next run of the suite marks it FAILED
            pass

    def log_trained_model(self, parent: str | None, name: str, key: str, model: Any,
                          history: dict[str, list[float]], params: dict[str, Any]) -> str:
        return self.tracker.log_trained_model(parent, name, key, model, history, params)


class Keeper:
    """The runner's side of a spool: writes the kept records of its suite's cells when the
    store takes them (bench.run.runner calls `write` before deciding which cells run, after
    each cell while some are kept, and at the end)."""

    def __init__(self, tracker: Tracker, spool: Spool):
        self.tracker, self.spool = tracker, spool
        self.writer = RecordWriter(tracker)  # no spool of its own: a failure leaves the record here
        self.last_error = ""  # why the last `write` stopped

    @classmethod
    def of(cls, log: object, cache_root: str | os.PathLike) -> Keeper | None:
        """The keeper of a suite log's store; None for a log without one (in memory)."""
        tracker = getattr(log, "tracker", None)
        if tracker is None:
            return None
        return cls(tracker, Spool.for_store(cache_root, tracker.uri, tracker.experiment_id))

    def kept(self, keys: set[str]) -> set[str]:
        """The cells of `keys` whose records wait here."""
        return set(self.spool.keys()) & keys

    def write(self, keys: set[str], patience: float | None = None) -> dict[str, str]:
        """Write the kept records of `keys` (waiting `patience` seconds for the store, None:
        BENCH_STORE_PATIENCE_S); returns cell key -> run id of those written. Stops at the
        first the store does not take: the rest wait for the next call."""
        from bench.record.tracking import quiet_store_logs

        written: dict[str, str] = {}
        t = self.tracker
        for key in sorted(self.kept(keys)):
            record = self.spool.load(key)
            if record is None:
                continue
            try:
                with quiet_store_logs(), (t.outage.within(patience) if patience is not None
                                          else nullcontext()):
                    done = t.finished_cell_run(key)  # written by a writer that died before removing it
                    if done is None:
                        if record.run_id and t.run_status(record.run_id) != "RUNNING":
                            record.run_id = ""  # ended meanwhile (marked stale): a run of its own
                        self.writer.finish(record)
                        done = record.run_id
            except (StoreUnreachable, RecordError) as e:
                self.last_error = str(e)
                break
            self.spool.remove(key)
            written[key] = done
        return written


SUITE_FAULTS = ("disk full", "the artifact folder ")


def suite_fault(error: str) -> bool:
    """A cell's error that every later cell would meet too (a full disk, a read-only artifact
    folder): the runner stops the suite and says it once."""
    return error.startswith(SUITE_FAULTS)


def artifact_denied(e: BaseException) -> str | None:
    """The folder an artifact write was refused in (EACCES, EPERM, EROFS), else None."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            name = cur.filename or ""
            return str(Path(name).parent) if name else "of the experiment"
        cur = cur.__cause__ or cur.__context__
    return None


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else "".join(tb.format_exception_only(type(e), e)).strip())[:300]


__all__ = ["Keeper", "RecordError", "RecordKept", "RecordStore", "RecordWriter", "artifact_denied", "suite_fault"]
