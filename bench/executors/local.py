"""The default executor: cells in this process, or one worker process per GPU."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING

from pydantic import Field

from bench.cells import Cell
from bench.executors import EXECUTORS, Executor, OnResult, cli_flag
from bench.registry import Options

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.worker import WorkerEnv


class LocalOptions(Options):
    workers: int = Field(1, ge=1, description="worker processes (default 1: this process); with "
                         "GPUs, one per GPU, each pinned to its device", json_schema_extra=cli_flag("--workers"))


def _init_worker(devices) -> None:
    from bench.executors.worker import pin_device

    pin_device(devices.get())


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Cells in this process (workers: 1), or in N worker processes, one per GPU."""

    Options = LocalOptions

    def distributed(self) -> bool:
        return self.options.workers > 1

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        from bench.executors.worker import execute

        if self.options.workers == 1:
            for cell in cells:
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
        from bench.executors.worker import execute

        ctx = mp.get_context("spawn")  # CUDA cannot be forked
        devices = ctx.Manager().Queue()
        for d in self._devices(env):
            devices.put(d)
        pool = ProcessPoolExecutor(self.options.workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(devices,))
        futures: dict[Future, Cell] = {pool.submit(execute, c, env): c for c in cells}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    # a worker that dies (out of memory) breaks the pool: its cell and the ones
                    # still queued are reported failed; a rerun of the suite retries them
                    err = f.exception()
                    on_result(futures[f], err if err is not None else f.result())
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            return True
        pool.shutdown(wait=True)
        return False
