"""The default executor: cells in this process, or one worker process per GPU; either way
one model's cells (a (model, dataset, repeat) group) run together in one process."""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from pydantic import Field

from bench.cells import Cell
from bench.executors import EXECUTORS, Executor, OnResult, cli_flag, group_cells
from bench.registry import Options

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.worker import WorkerEnv


class LocalOptions(Options):
    workers: int = Field(1, ge=1, description="worker processes (default 1: this process); with "
                         "GPUs, one per GPU, each pinned to its device", json_schema_extra=cli_flag("--workers"))


def _init_worker(device: str) -> None:
    from bench.executors.worker import pin_device

    pin_device(device)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Cells in this process (workers: 1), or in N worker processes, one per GPU."""

    Options = LocalOptions
    options: LocalOptions

    def distributed(self) -> bool:
        return self.options.workers > 1

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        from bench.executors.worker import execute

        if self.options.workers == 1:
            # one model's cells one after another: its samples and features stay in memory
            for cell in (c for group in group_cells(cells) for c in group):
                outcome = execute(cell, env)
                on_result(cell, outcome)
                if outcome.status == "killed":
                    return True
            return False
        return self._pool(cells, env, on_result)

    def _devices(self, env: WorkerEnv) -> list[str]:
        import torch

        n = self.options.workers
        if env.device in ("auto", "cuda") and torch.cuda.is_available():
            return [f"cuda:{i % torch.cuda.device_count()}" for i in range(n)]
        return ["cpu" if env.device == "auto" else env.device] * n

    def _pool(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        """One single-process pool per worker (pinned to its device). A worker takes a whole
        (model, dataset, repeat) group, cell by cell (each cell's outcome is reported and
        fails alone), and the next group when it is done. A worker that dies (out of memory)
        fails the cells of its group still queued; it is replaced for the next group, and a
        rerun of the suite retries the failed cells."""
        from bench.executors.worker import execute

        ctx = mp.get_context("spawn")  # CUDA cannot be forked
        devices = self._devices(env)

        def start(i: int) -> ProcessPoolExecutor:
            return ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_worker,
                                       initargs=(devices[i],))

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
                    f = pools[i].submit(execute, cell, env)
                except BrokenProcessPool:  # its last worker died: a fresh one for this group
                    pools[i].shutdown(wait=False)
                    pools[i] = start(i)
                    f = pools[i].submit(execute, cell, env)
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
