"""The default executor: cells in this process, or one worker process per GPU; either way
one model's cells (a (model, dataset, repeat) group) run together in one process."""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from pydantic import Field

from bench.config.cells import Cell
from bench.core.registry import Options
from bench.executors import EXECUTORS, Executor, OnResult, cli_flag, group_cells

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.worker import CellOutcome, Shared, Worker, WorkerEnv


class LocalOptions(Options):
    workers: int = Field(1, ge=1, description="worker processes (default 1: this process); with "
                         "GPUs, one per GPU, each pinned to its device", json_schema_extra=cli_flag("--workers"))
    threads: int | None = Field(None, ge=1, description="CPU threads per process (torch, OpenMP, "
                                "MKL, OpenBLAS); default: $BENCH_THREADS, else cores // workers "
                                "for a worker pool and this process's own setting for workers: 1",
                                json_schema_extra=cli_flag("--threads"))


# the Worker of a pool process (one per process, made by its initializer); None elsewhere
_pool_worker: Worker | None = None


def _init_worker(device: str, threads: int) -> None:
    from bench.executors.worker import Worker
    from bench.run.threads import apply

    global _pool_worker
    apply(threads)  # before the first cell imports torch's thread pools into use
    _pool_worker = Worker(device)  # pinned to its GPU


def _pool_execute(cell: Cell, env: WorkerEnv) -> CellOutcome:
    """A cell in a pool process, with that process's Worker."""
    assert _pool_worker is not None, "a pool process without its initializer"
    return _pool_worker.execute(cell, env)


def start_worker(device: str, threads: int) -> ProcessPoolExecutor:
    """A one-process pool (spawned: CUDA cannot be forked) pinned to `device`, running
    `threads` CPU threads. Its process starts on the first submit and inherits the
    environment then: `LocalExecutor.run` sets the thread variables around the pool."""
    return ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(device, threads))


@EXECUTORS.register("local")
class LocalExecutor(Executor[LocalOptions]):
    """Cells in this process (workers: 1), or in N worker processes, one per GPU."""

    _worker: Worker | None = None  # cells run in this process (workers: 1)

    def distributed(self) -> bool:
        return self.options.workers > 1

    def local_state(self, env: WorkerEnv) -> Shared | None:
        return self._worker.shared.get(env) if self._worker is not None else None

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        from bench.executors.worker import Worker
        from bench.run import threads

        if self.options.workers == 1:
            if self._worker is None:
                self._worker = Worker()
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
        """One single-process pool per worker (pinned to its device). A worker takes a whole
        (model, dataset, repeat) group, cell by cell (each cell's outcome is reported and
        fails alone), and the next group when it is done. A worker that dies (out of memory)
        fails the cells of its group still queued; it is replaced for the next group, and a
        rerun of the suite retries the failed cells. Each worker runs `threads` threads."""
        devices = self._devices(env)

        def start(i: int) -> ProcessPoolExecutor:
            return start_worker(devices[i], threads)

        pools = [start(i) for i in range(len(devices))]
        queue = deque(group_cells(cells))
        running: dict[Future, tuple[Cell, int]] = {}
        queued = [0] * len(pools)  # cells submitted to each worker and not yet reported

        def feed(i: int) -> None:
            if not queue or queued[i]:
                return
            group = queue.popleft()
            for cell in group:
                try:
                    f = pools[i].submit(_pool_execute, cell, env)
                except BrokenProcessPool:  # its last worker died: a fresh one for this group
                    pools[i].shutdown(wait=False)
                    pools[i] = start(i)
                    f = pools[i].submit(_pool_execute, cell, env)
                running[f] = (cell, i)
                queued[i] += 1

        try:
            for i in range(len(pools)):
                feed(i)
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    cell, i = running.pop(f)
                    queued[i] -= 1
                    err = f.exception()
                    on_result(cell, err if err is not None else f.result())
                    feed(i)
        except KeyboardInterrupt:
            for pool in pools:
                pool.shutdown(wait=False, cancel_futures=True)
            return True
        for pool in pools:
            pool.shutdown(wait=True)
        return False
