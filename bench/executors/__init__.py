"""Executors: where cells run. One registry; each executor is a thin adapter over an
existing engine (a process pool, Ray, Slurm through submitit), in the spirit of benchopt.

The executor never changes results: every path calls `worker.execute(cell, env)`, which
seeds from the cell and logs with explicit run ids.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.errors import BenchError
from bench.executors.worker import CellOutcome, WorkerEnv
from bench.registry import Plugin, Registry
from bench.suite import Cell

EXECUTORS: Registry = Registry(
    "executors", ["bench.executors.local", "bench.executors.ray_executor", "bench.executors.slurm"]
)

OnResult = Callable[[Cell, "CellOutcome | BaseException"], None]


class Executor(Plugin):
    """Runs cells and reports each outcome (or the exception that lost it) to `on_result`."""

    def distributed(self) -> bool:
        """Whether other processes log to the tracking store (then SQLite files are refused)."""
        return True

    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        """Run all cells; return True when interrupted (Ctrl-C) before finishing."""
        raise NotImplementedError


def check_store(uri: str, executor: str) -> None:
    """Many processes writing one SQLite file corrupt it or lock each other out."""
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        raise BenchError(
            f"executor '{executor}' runs cells in several processes, which must not all write the "
            f"SQLite/file store '{uri}'. Start a tracking server, e.g. `mlflow server "
            "--backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000`, and pass "
            "--tracking-uri http://127.0.0.1:5000 (docker/compose.yaml runs one on PostgreSQL).")


__all__ = ["EXECUTORS", "CellOutcome", "Executor", "OnResult", "WorkerEnv", "check_store"]
