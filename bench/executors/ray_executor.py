"""Cells as Ray tasks on a cluster (`--ray-address`) or on a local Ray started for the run.

Each task requests `num_gpus`/`num_cpus`; a task whose worker dies fails only its cell.
Shared caches are not raced: cache entries are computed under a file lock (bench/cache.py),
so a second task needing the same real classifier waits and then reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from bench.cells import Cell
from bench.errors import BenchError
from bench.executors import EXECUTORS, Executor, OnResult, cli_flag
from bench.registry import Options

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.worker import WorkerEnv


class RayOptions(Options):
    address: str | None = Field(None, description="Ray cluster address (default: start a local Ray)",
                                json_schema_extra=cli_flag("--ray-address"))
    num_gpus: float = Field(0, ge=0, description="GPUs per cell (default: 1 when the cluster has any)",
                            json_schema_extra=cli_flag("--gpus-per-task"))
    num_cpus: float = Field(1, gt=0, description="CPUs per cell")
    local_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray started for the run")


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Ray tasks (one per cell) on an existing cluster or a local one."""

    Options = RayOptions

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        try:
            import ray
        except ImportError:
            raise BenchError("--executor ray needs Ray: `pip install 'ray[default]'`.") from None
        from bench.executors.worker import execute

        o = self.options
        started = not ray.is_initialized()
        if started:
            ray.init(address=o.address, num_cpus=o.local_cpus if o.address is None else None,
                     include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        try:
            gpus = o.num_gpus or (1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0)
            task = ray.remote(num_gpus=gpus, num_cpus=o.num_cpus, max_retries=0)(execute)
            refs = {task.remote(c, env): c for c in cells}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ref = done[0]
                try:
                    on_result(refs[ref], ray.get(ref))
                except Exception as e:  # noqa: BLE001 - a lost worker/node fails only this cell
                    on_result(refs[ref], e)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            return True
        finally:
            if started:
                ray.shutdown()
        return False
