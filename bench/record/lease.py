"""A runner's lease on a suite: one live runner per suite and store.

The runner stamps a heartbeat (bench.record.cell_record.LeaseStamp) on its suite run every
`BENCH_HEARTBEAT_S` seconds from a daemon thread. Before it starts, a runner looks at the
suite's RUNNING suite runs: one with a fresh stamp is a live runner (refuse, rather than run
the same cells twice); one whose stamp is older than `BENCH_STALE_S`, or whose process on this
machine is gone (kill -9), is closed KILLED with a reason and taken over.

Talks to the store only through `LeaseStore` (what bench.record.tracking.Tracker offers).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Protocol

from bench.core.errors import BenchError
from bench.record.cell_record import LeaseStamp, error_tags


class RunningSuiteRuns(Protocol):
    """What a reader of a lease needs (a board: bench.record.sql.SuiteRunsView reads it
    straight from a SQL store)."""

    def running_suite_runs(self, suite: str) -> list[tuple[str, dict[str, str], int]]:
        """(run id, tags, start time in ms) of the suite's RUNNING suite runs."""
        ...


class LeaseStore(RunningSuiteRuns, Protocol):
    """The part of the record store a lease needs."""

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None: ...

    def end(self, run_id: str, status: str) -> None: ...


def runner_gone(stamp: LeaseStamp) -> bool:
    """A runner on this machine whose process no longer exists (kill -9) is gone at once,
    heartbeat or not; on another machine only the heartbeat can tell."""
    if stamp.host != socket.gethostname() or stamp.pid is None or stamp.pid == os.getpid():
        return False
    try:
        os.kill(stamp.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child its parent has not reaped yet is a zombie: gone, too
        with open(f"/proc/{stamp.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def is_live(stamp: LeaseStamp, now: float, stale_after: float) -> bool:
    """A runner that still holds its suite run: a fresh heartbeat, and not known to be gone."""
    return now - stamp.heartbeat < stale_after and not runner_gone(stamp)


def live_suite_run(store: RunningSuiteRuns, suite: str, stale_after: float | None = None
                   ) -> tuple[str, LeaseStamp] | None:
    """(run id, last stamp) of the suite run a live runner holds now, or None: what a board
    reads to say that a suite run is in progress (its models without a run yet are pending)."""
    if stale_after is None:
        from bench.core.settings import settings

        stale_after = settings().stale_s
    now = time.time()
    for run_id, tags, start in store.running_suite_runs(suite):
        stamp = LeaseStamp.from_tags(tags, start)
        if is_live(stamp, now, stale_after):
            return run_id, stamp
    return None


class Lease:
    """`take_over()` before a suite runs, `hold(run_id)` while it runs, `release()` after."""

    def __init__(self, store: LeaseStore, suite: str, every: float | None = None,
                 stale_after: float | None = None):
        from bench.core.settings import settings

        s = settings()
        self.store, self.suite = store, suite
        self.every = s.heartbeat_s if every is None else every
        self.stale_after = s.stale_s if stale_after is None else stale_after
        self.host = socket.gethostname()
        self.runner = f"pid {os.getpid()} on {self.host}"
        self.run_id: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take_over(self) -> int:
        """End the suite's RUNNING suite runs whose runner is gone (KILLED, with a reason);
        raise BenchError while a live runner holds the suite. Returns how many were closed."""
        closed = 0
        now = time.time()
        for run_id, tags, start in self.store.running_suite_runs(self.suite):
            stamp = LeaseStamp.from_tags(tags, start)
            if is_live(stamp, now, self.stale_after):
                raise BenchError(
                    f"suite '{self.suite}' is being run by {stamp.runner or 'another process'} "
                    f"(suite run {run_id}, last heartbeat {now - stamp.heartbeat:.0f}s ago). Wait "
                    f"for it to finish, or stop it; a runner that died is taken over "
                    f"{self.stale_after:.0f}s after its last heartbeat.")
            self.store.set_tags(run_id, error_tags("its runner stopped without ending it "
                                                   "(killed?); closed by the next run of the suite"))
            self.store.end(run_id, "KILLED")
            closed += 1
        return closed

    def stamp(self) -> LeaseStamp:
        return LeaseStamp(time.time(), self.runner, os.getpid(), self.host)

    def hold(self, run_id: str) -> Lease:
        """Stamp `run_id` now and every `every` seconds until `release`."""
        self.run_id = run_id
        self._beat()
        self._thread = threading.Thread(target=self._loop, name="bench-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        if self.run_id is None:
            return
        try:
            self.store.set_tags(self.run_id, self.stamp().to_tags())
        except Exception:  # noqa: BLE001 - a store fault is reported by the cells themselves
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._beat()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = ["Lease", "LeaseStore", "RunningSuiteRuns", "is_live", "live_suite_run", "runner_gone"]
