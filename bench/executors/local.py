"""The default executor: cells in this process, or in worker processes (one per GPU, or one
when a cell has a `timeout`, so that a hung cell can be stopped); either way one model's
cells (a (model, dataset, repeat) group) run together in one process."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from pydantic import Field

from bench.core.registry import Options
from bench.executors import EXECUTORS, CellTimeout, Executor, OnResult, cli_flag, group_cells
from bench.executors.cells import Cell

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.process import WorkerProcess
    from bench.executors.worker import CellOutcome, Shared, Worker, WorkerEnv
    from bench.record.writer import RecordStore


class LocalOptions(Options):
    workers: int = Field(1, ge=1, description="worker processes (default 1: this process); with "
                         "GPUs, one per GPU, each pinned to its device", json_schema_extra=cli_flag("--workers"))
    threads: int | None = Field(None, ge=1, description="CPU threads per process (torch, OpenMP, "
                                "MKL, OpenBLAS); default: $BENCH_THREADS, else cores // workers "
                                "for a worker pool and this process's own setting for workers: 1",
                                json_schema_extra=cli_flag("--threads"))


# the Worker of a worker process (one per process, made for its first cell); None elsewhere
_process_worker: Worker | None = None


def _process_worker_for() -> Worker:
    from bench.executors.process import worker_device
    from bench.executors.worker import Worker

    global _process_worker
    if _process_worker is None:
        _process_worker = Worker(worker_device())  # pinned to its GPU
    return _process_worker


def _prepare(env: WorkerEnv) -> None:
    """A fresh worker process's set-up for a suite run (its store client, cache), before its
    first cell: a cell's `timeout` counts the cell's own work, not this."""
    shared = _process_worker_for().shared_for(env)
    tracker = getattr(shared.records, "tracker", None)
    if tracker is not None:  # opens MLflow's store (imports, schema check: seconds)
        tracker.client.get_experiment(env.experiment_id)


def _execute(cell: Cell, env: WorkerEnv) -> CellOutcome:
    """A cell in a worker process (bench.executors.process), with that process's Worker."""
    return _process_worker_for().execute(cell, env)


def start_worker(device: str, threads: int) -> WorkerProcess:
    """A worker process pinned to `device`, running `threads` CPU threads. It inherits the
    environment now: `LocalExecutor.run` sets the thread variables around its workers."""
    from bench.executors.process import WorkerProcess

    return WorkerProcess(device, threads)


@EXECUTORS.register("local")
class LocalExecutor(Executor[LocalOptions]):
    """Cells in this process (workers: 1, no cell with a `timeout`), or in N worker
    processes, one per GPU."""

    _worker: Worker | None = None  # cells run in this process (workers: 1)
    _records: RecordStore | None = None  # an in-memory log's store (`use_records`)

    def distributed(self) -> bool:
        return self.options.workers > 1

    def use_records(self, records: RecordStore) -> None:
        if self.options.workers > 1:
            super().use_records(records)
        self._records = records

    def local_state(self, env: WorkerEnv) -> Shared | None:
        return self._worker.shared.get(env) if self._worker is not None else None

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        from bench.executors import threads
        from bench.executors.worker import Worker

        # a cell with a time limit runs in a worker process, which can be stopped
        if self._records is not None and any(c.timeout for c in cells):
            from bench.core.errors import BenchError

            raise BenchError("a cell `timeout` runs cells in a worker process, which cannot write "
                             "to an in-memory log; drop the timeout, or log to an MLflow store "
                             "(log=True, --tracking-uri).")
        if self.options.workers == 1 and not any(c.timeout for c in cells):
            if self._worker is None:
                self._worker = Worker(records=self._records)
            # this process keeps its threads (torch's default: all cores) unless overridden
            override = self.options.threads if self.options.threads is not None else threads.from_env()
            with threads.applied(override):
                # one model's cells one after another: its samples and features stay in memory
                for cell in (c for group in group_cells(cells) for c in group):
                    outcome = self._worker.execute(cell, env)
                    on_result(cell, outcome)
                    if outcome.status == "killed":
                        return True
            return False
        # workers share the cores: N processes with all cores' threads each oversubscribe them
        budget = threads.budget(self.options.workers, self.options.threads)
        with threads.environment(budget):  # inherited by the workers spawned meanwhile
            return self._pool(cells, env, on_result, budget)

    def _devices(self, env: WorkerEnv) -> list[str]:
        import torch

        n = self.options.workers
        if env.device in ("auto", "cuda") and torch.cuda.is_available():
            return [f"cuda:{i % torch.cuda.device_count()}" for i in range(n)]
        return ["cpu" if env.device == "auto" else env.device] * n

    def _pool(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult, threads: int) -> bool:
        """One worker process per worker (pinned to its device). A worker takes a whole
        (model, dataset, repeat) group and runs it a cell at a time (each cell's outcome is
        reported and fails alone), then the next group. A cell past its `timeout` is stopped
        with its process and fails; a fresh process goes on with the rest of its group. A
        worker that dies (out of memory) fails the rest of its group; it is replaced for the
        next group, and a rerun of the suite retries the failed cells."""
        from multiprocessing.connection import wait

        from bench.executors.process import stop_all

        devices = self._devices(env)
        queue = deque(group_cells(cells))
        todo: list[deque[Cell]] = [deque() for _ in devices]  # each worker's group, not yet sent
        running: dict[int, Cell] = {}  # worker -> its cell in flight
        preparing: set[int] = set()  # workers setting up for the suite run

        def start(i: int) -> WorkerProcess:
            w = start_worker(devices[i], threads)
            w.submit(_prepare, env)
            preparing.add(i)
            return w

        workers = [start(i) for i in range(len(devices))]

        def feed(i: int) -> None:  # worker `i` is set up and idle
            if not todo[i] and queue:
                todo[i] = deque(queue.popleft())
            if todo[i]:
                running[i] = todo[i].popleft()
                workers[i].submit(_execute, running[i], env)

        def restart(i: int) -> None:  # a fresh process, when there is work left for one
            workers[i].stop(now=True)
            if todo[i] or queue:
                workers[i] = start(i)

        def lost(i: int) -> None:
            """Worker `i` died: its cell and the rest of its group fail (a worker that dies
            setting up fails the group it would have run, so one that cannot start ends)."""
            code = workers[i].process.exitcode
            group = [running.pop(i)] if i in running else []
            group += todo[i]
            todo[i].clear()
            if not group and queue:
                group = queue.popleft()
            preparing.discard(i)
            for cell in group:
                on_result(cell, ChildProcessError(
                    f"the worker process running model '{cell.model.key}' ended (exit code "
                    f"{code}{', killed: out of memory?' if code == -9 else ''})"))
            restart(i)

        def overdue(i: int) -> float | None:
            """Seconds until the cell of worker `i` is past its limit (None: no limit yet)."""
            limit, started = running[i].timeout, workers[i].started
            return None if limit is None or started is None else started + limit - time.monotonic()

        try:
            while running or preparing:
                left = [t for i in running if (t := overdue(i)) is not None]
                wait([x for i in (*running, *preparing) for x in workers[i].waitables()],
                     max(0.0, min(left)) if left else None)
                for i in list(preparing):
                    if any(kind != "started" for kind, _ in workers[i].messages()):
                        preparing.discard(i)  # an error here is the first cell's to report
                        feed(i)
                    elif not workers[i].alive():
                        lost(i)
                for i in list(running):
                    for kind, value in workers[i].messages():
                        if kind != "started":
                            cell = running.pop(i)
                            on_result(cell, value if kind == "ok" else RuntimeError(value))
                            feed(i)
                            break  # one cell at a time: nothing else can be waiting
                    if i not in running:
                        continue
                    if not workers[i].alive():
                        lost(i)
                    elif (t := overdue(i)) is not None and t <= 0:
                        cell = running.pop(i)
                        restart(i)  # stops the hung cell with its process
                        on_result(cell, CellTimeout(cell.timeout or 0))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the runner marks the runs KILLED
            stop_all(workers, now=True)
            return True
        except BaseException:  # never leave a worker waiting for a runner that has moved on
            stop_all(workers, now=True)
            raise
        stop_all(workers, now=False)
        return False
