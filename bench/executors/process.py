"""A worker process the runner can stop, and that never outlives it.

The local executor runs cells in these when it has several workers or a cell has a `timeout`:
a cell that hangs (a generator sleeping in `forward`) is stopped by ending its process, which
no thread in the runner's own process could do. One call at a time goes over a pipe; the
worker says when it starts one, so a limit counts the cell's own time, not the process's
start (importing torch takes seconds).

A worker dies with its runner, even one killed with SIGKILL (which runs no clean-up): on
Linux the kernel sends it SIGKILL when the runner's thread that started it ends
(prctl PR_SET_PDEATHSIG), and on any system a watch thread ends it within a second of its
parent changing (the runner died and it was re-parented). It ignores SIGINT: a Ctrl-C in the
terminal reaches the whole process group, and the runner decides what stops (it ends its
workers and marks their runs KILLED).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_S = 1.0  # how often a worker checks that its runner is alive


class WorkerProcess:
    """A spawned process (CUDA cannot be forked) pinned to `device`, running `threads` CPU
    threads; it inherits the environment when started (`LocalExecutor` sets the thread
    variables around it)."""

    def __init__(self, device: str, threads: int):
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        # not daemonic: a cell may start processes of its own (a DataLoader's workers)
        self.process = ctx.Process(target=_serve, args=(child, device, threads, os.getpid()),
                                   name=f"bench-worker-{device}")
        self.process.start()
        child.close()  # the worker holds the only other end: its death is our EOF
        self.started: float | None = None  # when the call in flight started (monotonic)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start `fn(*args)` in the worker (a module-level function: it is pickled by name)."""
        self.started = None
        self._conn.send((fn, args))

    def waitables(self) -> list[Any]:
        """What `multiprocessing.connection.wait` watches: a message, or the process ending."""
        return [self._conn, self.process.sentinel]

    def messages(self) -> list[tuple[str, Any]]:
        """The messages waiting now: ("started", None), ("ok", result), ("error", text)."""
        out = []
        try:
            while self._conn.poll():
                kind, value = self._conn.recv()
                if kind == "started":
                    self.started = time.monotonic()
                out.append((kind, value))
        except (EOFError, OSError):  # the process ended mid-message
            pass
        return out

    def alive(self) -> bool:
        return self.process.is_alive()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """`fn(*args)` in the worker, waited for (raises RuntimeError with its error)."""
        self.submit(fn, *args)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for kind, value in self.messages():
                if kind == "ok":
                    return value
                if kind == "error":
                    raise RuntimeError(value)
            if not self.alive():
                raise RuntimeError(f"the worker process ended (exit code {self.process.exitcode})")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"no answer from the worker in {timeout} s")
            mp.connection.wait(self.waitables(), left)

    def stop(self, now: bool = False) -> None:
        """End the worker: when idle, by closing its pipe (it exits by itself); `now` (a hung
        call, an interrupt): SIGTERM, then SIGKILL after 3 s."""
        self._conn.close()
        if not now:
            self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(3)


def stop_all(workers: list[WorkerProcess], now: bool = True) -> None:
    """End every worker, signalling all first so that they end together."""
    for w in workers:
        w._conn.close()
        if now and w.alive():
            w.process.terminate()
    for w in workers:
        w.stop(now)


def die_with(parent: int) -> None:
    """End this process when `parent` (the runner) dies: PR_SET_PDEATHSIG where there is one,
    and a thread watching os.getppid() everywhere."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):  # no libc symbol: the watch thread still works
            pass
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_S)
        os._exit(1)  # no clean-up: the next run marks this worker's runs stale

    threading.Thread(target=watch, name="watch-runner", daemon=True).start()


def _serve(conn: Connection, device: str, threads: int, parent: int) -> None:
    """The worker's loop: one call at a time until the runner closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with(parent)
    from bench.executors.threads import apply

    apply(threads)  # before the first cell imports torch's thread pools into use
    global _device
    _device = device
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):  # the runner is done with us (or gone)
            return
        conn.send(("started", None))
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as e:  # noqa: BLE001 - reported to the runner, which decides
            reply = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        try:
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - a result that cannot be pickled
            conn.send(("error", f"the result could not be sent to the runner: {e}"))


_device: str | None = None  # the device of this worker process (None in the runner)


def worker_device() -> str | None:
    """The device this worker process is pinned to (None outside a worker)."""
    return _device
