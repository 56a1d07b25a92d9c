"""Executors: where cells run. One registry; each executor is a thin adapter over an
existing engine (a process pool, Ray, Slurm through submitit), in the spirit of benchopt.

The executor never changes results: every path calls `Worker.execute(cell, env)`
(bench.executors.worker), which seeds from the cell and hands its record to the one writer.
An executor owns the `Worker` state of the processes it runs cells in.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic.fields import FieldInfo

from bench.core.errors import BenchError
from bench.core.registry import O, Options, Plugin, Registry
from bench.executors.cells import Cell

if TYPE_CHECKING:  # the worker imports MLflow: only the executors themselves need it
    from bench.executors.worker import CellOutcome, Shared, WorkerEnv
    from bench.record.writer import RecordStore

OnResult = Callable[[Cell, "CellOutcome | BaseException"], None]


class CellTimeout(Exception):
    """A cell stopped at its `timeout`: what an executor reports for it (the runner ends its
    run FAILED with this message and goes on with the next cell)."""

    def __init__(self, seconds: float):
        super().__init__(f"timed out after {seconds:g} s (the cell's `timeout`; raise it in the "
                         "suite or the metric's entry, or pass --timeout)")
        self.seconds = seconds


class Executor(Plugin[O]):
    """Runs cells and reports each outcome (or the exception that lost it) to `on_result`."""

    def distributed(self) -> bool:
        """Whether other processes log to the tracking store (then SQLite files are refused)."""
        return True

    def local_state(self, env: WorkerEnv) -> Shared | None:
        """This process's state of a suite run (its cache and store, for the runner's report),
        when cells ran here; None when they ran in other processes."""
        return None

    def use_records(self, records: RecordStore) -> None:
        """Hand every cell's record to `records` (an in-memory log, bench.record.memory), which
        only cells run in this process can reach. Refused here: this executor runs them elsewhere."""
        raise BenchError(f"executor '{self.name}' runs cells in other processes, which cannot "
                         "write to an in-memory log; log to an MLflow store (log=True, "
                         "--tracking-uri) or use the local executor with workers: 1.")

    @abstractmethod
    def run(self, cells: list[Cell], env: WorkerEnv, on_result: OnResult) -> bool:
        """Run all cells; return True when interrupted (Ctrl-C) before finishing."""


EXECUTORS: Registry[type[Executor]] = Registry(
    "executors", ["bench.executors.local", "bench.executors.ray_executor", "bench.executors.slurm"],
    base=Executor,
)


def group_cells(cells: list[Cell]) -> list[list[Cell]]:
    """Cells grouped by (model, dataset, repeat), in order of first appearance, each group in
    suite order. An executor sends a group to one worker, so the model's one sampling pass
    and feature pass (bench.infra.store) serve all its metrics; models are told apart by their
    resolved options, not their names, so two names with the same options share a group."""
    groups: dict[tuple[str, str, int], list[Cell]] = {}
    for cell in cells:
        model = json.dumps(cell.model.resolved(), sort_keys=True, default=str)
        groups.setdefault((model, cell.dataset.key, cell.repeat), []).append(cell)
    return list(groups.values())


def cli_flag(flag: str) -> dict[str, Any]:
    """`Field(..., json_schema_extra=cli_flag("--workers"))`: the `bench run` flag that sets an
    executor option. Several executors may share a flag (--gpus-per-task)."""
    return {"cli": flag}


def executor_flags() -> dict[str, list[tuple[str, str, FieldInfo]]]:
    """`bench run` flag -> [(executor, option, field)] for every option that declares one."""
    out: dict[str, list[tuple[str, str, FieldInfo]]] = {}
    for name, cls in EXECUTORS.items():
        for opt, f in cls.Options.model_fields.items():
            extra = f.json_schema_extra
            if isinstance(extra, dict) and isinstance(extra.get("cli"), str):
                out.setdefault(str(extra["cli"]), []).append((name, opt, f))
    return out


@dataclass(frozen=True)
class ExecutorConfig:
    """Which executor runs a suite's cells, with its validated options. Parsed once, from the
    suite's `executor:` block (bench.config.suite); `bench run` flags override it (bench.cli)."""

    name: str
    options: Options

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> ExecutorConfig:
        """`{name: local|ray|slurm, ...its options}`; None: local with its defaults. Raises
        BenchError for an unknown executor and pydantic's ValidationError for bad options."""
        spec = dict(raw or {})
        name = spec.pop("name", "local")
        if not isinstance(name, str) or name not in EXECUTORS:
            raise BenchError(EXECUTORS.explain(str(name)))
        return cls(name, EXECUTORS.get(name).Options(**spec))

    def override(self, name: str | None = None, flags: Mapping[str, Any] | None = None,
                 ) -> ExecutorConfig:
        """Command-line overrides: another executor (`name`) starts from its own defaults (the
        suite's options were for this one); each flag (`--workers` -> value, None: not given)
        sets the option of the chosen executor that declares it, and is ignored by the others."""
        name = name or self.name
        values: dict[str, Any] = self.options.model_dump() if name == self.name else {}
        for flag, uses in executor_flags().items():
            given = (flags or {}).get(flag)
            values.update({opt: given for ex, opt, _ in uses if ex == name and given is not None})
        return ExecutorConfig.parse({"name": name, **values})

    def build(self) -> Executor:
        return EXECUTORS.get(self.name)(self.options)


def check_store(uri: str, executor: str) -> None:
    """Many processes writing one SQLite file corrupt it or lock each other out."""
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        raise BenchError(
            f"executor '{executor}' runs cells in several processes, which must not all write the "
            f"SQLite/file store '{uri}'. Start a tracking server, e.g. `mlflow server "
            "--backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000`, and pass "
            "--tracking-uri http://127.0.0.1:5000 (docker/compose.yaml runs one on PostgreSQL).")


__all__ = ["EXECUTORS", "CellTimeout", "Executor", "ExecutorConfig", "OnResult", "check_store", "cli_flag",
           "executor_flags", "group_cells"]
