"""Cells as a Slurm job array through submitit (for clusters without Ray). The `local`
cluster runs the same jobs as local processes, which is how the tests exercise it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from bench.cells import Cell
from bench.errors import BenchError
from bench.executors import EXECUTORS, Executor, OnResult, cli_flag
from bench.registry import Options

if TYPE_CHECKING:  # the worker imports MLflow: imported when cells run, not when listed
    from bench.executors.worker import WorkerEnv


class SlurmOptions(Options):
    partition: str | None = Field(None, description="Slurm partition",
                                  json_schema_extra=cli_flag("--slurm-partition"))
    time_min: int = Field(60, ge=1, description="time limit per cell, minutes",
                          json_schema_extra=cli_flag("--slurm-time"))
    gpus_per_task: int = Field(1, ge=0, description="GPUs per cell",
                               json_schema_extra=cli_flag("--gpus-per-task"))
    cpus_per_task: int = Field(4, ge=1)
    folder: Path = Field(Path(".bench_slurm"), description="submitit logs and pickles")
    cluster: Literal["slurm", "local", "debug"] = Field("slurm", description="submitit backend")
    array_parallelism: int = Field(64, ge=1, description="cells running at once")


def _run(cell: Cell, env: WorkerEnv):
    from bench.executors.worker import execute

    return execute(cell, env)


@EXECUTORS.register("slurm")
class SlurmExecutor(Executor):
    """One Slurm job array per suite through submitit; `cluster: local` for a dry run."""

    Options = SlurmOptions

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        try:
            import submitit
        except ImportError:
            raise BenchError("--executor slurm needs submitit: `pip install submitit`.") from None
        o = self.options
        ex = submitit.AutoExecutor(folder=str(o.folder / "%j"), cluster=o.cluster)
        params = {"timeout_min": o.time_min, "slurm_array_parallelism": o.array_parallelism,
                  "cpus_per_task": o.cpus_per_task}
        if o.cluster == "slurm":
            params.update(gpus_per_node=o.gpus_per_task, slurm_partition=o.partition)
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        jobs = ex.map_array(_run, cells, [env] * len(cells))
        try:
            for job, cell in zip(jobs, cells, strict=True):
                try:
                    on_result(cell, job.result())
                except Exception as e:  # noqa: BLE001 - a failed job fails only its cell
                    on_result(cell, e)
        except KeyboardInterrupt:
            for job in jobs:
                job.cancel(check=False)
            return True
        return False
