"""Cells as a Slurm job array through submitit (for clusters without Ray). The `local`
cluster runs the same jobs as local processes, which is how the tests exercise it.

One job per (model, dataset, repeat) group runs its cells in order, so the model's one
sampling and feature pass (bench.infra.store) serves all its metrics. A cell that fails fails
alone (the worker isolates it); a job that dies (time limit, out of memory) fails the cells
of its group, and a rerun of the suite retries those not finished."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.executors import EXECUTORS, Executor, OnResult, cli_flag, group_cells
from bench.executors.cells import Cell

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.worker import CellOutcome, WorkerEnv


class SlurmOptions(Options):
    partition: str | None = Field(None, description="Slurm partition",
                                  json_schema_extra=cli_flag("--slurm-partition"))
    time_min: int = Field(60, ge=1, description="time limit per cell, minutes (a job runs one "
                          "model's cells: its limit is this times the largest group's cell count)",
                          json_schema_extra=cli_flag("--slurm-time"))
    gpus_per_task: int = Field(1, ge=0, description="GPUs per job (one model's cells)",
                               json_schema_extra=cli_flag("--gpus-per-task"))
    cpus_per_task: int = Field(4, ge=1)
    folder: Path = Field(Path(".bench_slurm"), description="submitit logs and pickles")
    cluster: Literal["slurm", "local", "debug"] = Field("slurm", description="submitit backend")
    array_parallelism: int = Field(64, ge=1, description="jobs (models' cell groups) running at once")


def _run(cells: list[Cell], env: WorkerEnv) -> list[CellOutcome]:
    from bench.executors.worker import Worker

    worker = Worker()  # the job's datasets, generators and store
    return [worker.execute(cell, env) for cell in cells]


@EXECUTORS.register("slurm")
class SlurmExecutor(Executor[SlurmOptions]):
    """One Slurm job array per suite through submitit; `cluster: local` for a dry run."""

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        try:
            import submitit
        except ImportError:
            raise BenchError("--executor slurm needs submitit: `pip install submitit`.") from None
        o = self.options
        ex = submitit.AutoExecutor(folder=str(o.folder / "%j"), cluster=o.cluster)
        groups = group_cells(cells)
        longest = max((len(g) for g in groups), default=1)
        params: dict[str, Any] = {"timeout_min": o.time_min * longest, "cpus_per_task": o.cpus_per_task,
                                  "slurm_array_parallelism": o.array_parallelism}
        if o.cluster == "slurm":
            params.update(gpus_per_node=o.gpus_per_task, slurm_partition=o.partition)
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        jobs = ex.map_array(_run, groups, [env] * len(groups))
        try:
            for job, group in zip(jobs, groups, strict=True):
                try:
                    outcomes = job.result()
                except Exception as e:  # noqa: BLE001 - a failed job fails only its group's cells
                    for cell in group:
                        on_result(cell, e)
                    continue
                for cell, outcome in zip(group, outcomes, strict=True):
                    on_result(cell, outcome)
        except KeyboardInterrupt:
            for job in jobs:
                job.cancel(check=False)
            return True
        return False
