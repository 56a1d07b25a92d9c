"""Cells on Ray actors on a cluster (`--ray-address`) or on a local Ray started for the run.

One actor (one process) per (model, dataset, repeat) group runs its cells in order, so the
model's one sampling and feature pass (bench.infra.store) serves all its metrics; each actor
requests `num_gpus`/`num_cpus`. Each cell is reported on its own; an actor whose process
dies fails its cells not yet finished, and no other. Shared caches are not raced: cache
entries are computed under a file lock (bench/infra/cache.py), so a second actor needing the
same real classifier waits and then reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.executors import EXECUTORS, Executor, OnResult, cli_flag, group_cells
from bench.executors.cells import Cell

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.worker import CellOutcome, WorkerEnv


class RayOptions(Options):
    address: str | None = Field(None, description="Ray cluster address (default: start a local Ray)",
                                json_schema_extra=cli_flag("--ray-address"))
    num_gpus: float = Field(0, ge=0, description="GPUs per worker (one model's cells; default: 1 "
                            "when the cluster has any)",
                            json_schema_extra=cli_flag("--gpus-per-task"))
    num_cpus: float = Field(1, gt=0, description="CPUs per worker (one model's cells)")
    local_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray started for the run")


@EXECUTORS.register("ray")
class RayExecutor(Executor[RayOptions]):
    """Ray actors (one per model's cells) on an existing cluster or a local one."""

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        try:
            import ray
        except ImportError:
            raise BenchError("--executor ray needs Ray: `pip install 'ray[default]'`.") from None

        o = self.options
        started = not ray.is_initialized()
        if started:
            ray.init(address=o.address, num_cpus=o.local_cpus if o.address is None else None,
                     include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        actors: dict[Any, int] = {}  # actor -> its cells not yet reported
        refs: dict[Any, tuple[Cell, Any]] = {}
        try:
            gpus = o.num_gpus or (1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0)
            worker = ray.remote(num_gpus=gpus, num_cpus=o.num_cpus, max_restarts=0,
                                max_task_retries=0)(CellWorker)
            # actors wait for resources like tasks, and end as soon as their last cell is
            # reported, which frees their resources for the next group
            for group in group_cells(cells):
                actor = worker.remote()
                actors[actor] = len(group)
                for cell in group:
                    refs[actor.run.remote(cell, env)] = (cell, actor)  # type: ignore[attr-defined]
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                cell, actor = refs[done[0]]
                try:
                    on_result(cell, ray.get(done[0]))
                except Exception as e:  # noqa: BLE001 - a lost worker/node fails only its cells
                    on_result(cell, e)
                actors[actor] -= 1
                if not actors[actor]:
                    ray.kill(actor)
        except KeyboardInterrupt:
            for actor in actors:
                ray.kill(actor)
            return True
        finally:
            if started:
                ray.shutdown()
        return False


class CellWorker:
    """A Ray actor's body: the cells of one group, one after another, in its process."""

    def __init__(self) -> None:
        from bench.executors.worker import Worker

        self.worker = Worker()  # the actor's datasets, generators and store

    def run(self, cell: Cell, env: WorkerEnv) -> CellOutcome:
        return self.worker.execute(cell, env)
