"""A tracking store that goes away and comes back: said in one line each way, retried with
backoff whatever the store (an http server, PostgreSQL, MySQL, a SQLite file on a share).

`Outage` is what one process knows of one store: reachable, or unreachable since when.
`call(fn)` runs a store call; a transient fault (refused connection, timeout, 5xx, a locked
or vanished database) turns the store unreachable (one line), is retried with backoff for
up to `patience` seconds, and the first success after it says so (one line). A fault that
waiting does not cure (read-only, disk full, a missing table) is raised at once.

The clock and the sleep are injectable: tests play a five-minute outage in milliseconds.
Every Tracker of a process (its client is a `bench.record.tracking.GuardedClient`) shares the `Outage` of its store URI (`outage_for`), so the
worker's writes, the runner's reads and the lease's heartbeat say an outage once.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from bench.core.disk import disk_full
from bench.core.errors import BenchError

T = TypeVar("T")

# What a fault says when waiting may cure it: refused or dropped connections, timeouts, a
# server's 502/503/504, a database that is locked, restarting or unreachable.
TRANSIENT_TEXT = (
    "connection refused", "max retries exceeded", "failed to establish a new connection",
    "connection reset", "connection aborted", "remote end closed", "remotedisconnected",
    "timed out", "temporarily unavailable", "could not connect", "connection to server",
    "server closed the connection", "terminating connection", "the database system is",
    "database is locked", "unable to open database file", "disk i/o error",
    "name or service not known", "temporary failure in name resolution", "no route to host",
    "network is unreachable", "bad gateway", "service unavailable", "gateway timeout",
    "error code 502", "error code 503", "error code 504", "lost connection",
    "server has gone away", "can't connect to mysql server", "broken pipe",
)
# ... and what it says when it will not: the same answer after any wait
PERMANENT_TEXT = ("readonly", "read-only", "read only", "permission denied", "no such table",
                  "online migration")
PERMANENT_ERRNO = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)
WAITS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # backoff between attempts, then every 30 s


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def transient(e: BaseException) -> bool:
    """Whether waiting may cure the fault `e` (see the module docstring)."""
    if disk_full(e):
        return False
    chain = list(_chain(e))
    if any(isinstance(c, OSError) and c.errno in PERMANENT_ERRNO for c in chain):
        return False
    text = " ".join(str(c) for c in chain).lower()
    if any(t in text for t in PERMANENT_TEXT):
        return False
    if any(isinstance(c, ConnectionError | TimeoutError) for c in chain):
        return True
    # MLflow's SQL store turns SQLAlchemy's OperationalError (the server went away) into this
    if any(getattr(c, "error_code", None) == "TEMPORARILY_UNAVAILABLE" for c in chain):
        return True
    return any(t in text for t in TRANSIENT_TEXT)


def first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:200]}"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def _say(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line)  # above any progress bar, like the runner's own lines


class StoreUnreachable(BenchError):
    """The store stayed unreachable for a call's whole patience; the last fault is the cause.
    A BenchError: where no caller keeps the work (the runner's own reads), one line, exit 2."""


class Outage:
    """One store's reachability as this process sees it (module docstring)."""

    def __init__(self, uri: str, patience: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 say: Callable[[str], None] = _say):
        self.uri = uri
        self._patience = patience
        self.clock, self.sleep, self.say = clock, sleep, say
        self.since: float | None = None  # when the store turned unreachable; None: reachable
        self._lock = threading.Lock()
        self._local = threading.local()  # a block's own patience (`within`)

    @property
    def down(self) -> bool:
        return self.since is not None

    @property
    def patience(self) -> float:
        """Seconds a call waits for the store: a block's own (`within`), else this outage's,
        else BENCH_STORE_PATIENCE_S."""
        own = getattr(self._local, "patience", None)
        if own is not None:
            return own
        if self._patience is not None:
            return self._patience
        from bench.core.settings import settings

        return settings().store_patience_s

    @contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Calls in this block (this thread) wait at most `seconds` for the store."""
        before = getattr(self._local, "patience", None)
        self._local.patience = seconds
        try:
            yield
        finally:
            self._local.patience = before

    def lost(self, e: BaseException) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = self.clock()
        self.say(f"tracking store {self.uri} unreachable ({first_line(e)}); retrying. Cells go "
                 "on; a finished cell's record is kept on disk until the store is back.")

    def back(self) -> None:
        with self._lock:
            if self.since is None:
                return
            gone, self.since = self.clock() - self.since, None
        self.say(f"tracking store {self.uri} reachable again (unreachable for {_duration(gone)}).")

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()`, retried through transient faults for up to `patience` seconds; raises
        StoreUnreachable (from the last fault) after that, any other fault at once."""
        deadline = self.clock() + self.patience
        attempt = 0
        while True:
            try:
                out = fn()
            except Exception as e:
                if not transient(e):
                    raise
                left = deadline - self.clock()
                if left > 0 or attempt:  # a call that will not wait says nothing of its own
                    self.lost(e)
                if left <= 0:
                    raise StoreUnreachable(
                        f"tracking store {self.uri} unreachable ({first_line(e)})") from e
                self.sleep(min(WAITS[min(attempt, len(WAITS) - 1)], left))
                attempt += 1
                continue
            self.back()
            return out


_OUTAGES: dict[str, Outage] = {}
_OUTAGES_LOCK = threading.Lock()


def outage_for(uri: str) -> Outage:
    """The process's one `Outage` of the store at `uri`."""
    with _OUTAGES_LOCK:
        if uri not in _OUTAGES:
            _OUTAGES[uri] = Outage(uri)
        return _OUTAGES[uri]


# MLflow's behaviour for the length of a store call (bench.record.tracking.quiet_store_logs sets
# what the user has not set, and removes it after, so the caller's environment is left as it was):
# on an http store MLflow's client retries a request 7 times with backoff (about 5 minutes,
# silently) before it raises; here the retrying is `Outage`'s, which says so. MLflow's per-run
# "View run ... at" lines are ours to print once (the run summary), and its progress bar per
# artifact download (the HTML board reads each cell's images) is noise on a suite's console.
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",  # read by http requests only
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


__all__ = ["MLFLOW_ENV_DEFAULTS", "Outage", "StoreUnreachable", "outage_for",
           "transient"]
