"""The cell record: what one cell run is, as it crosses between computing and MLflow.

A worker computes a cell into a `CellRecord` (identity, values with their declarations,
flags, status, error); `to_tags` is how its fields become MLflow tags, `from_run` reads them
back, and `frame` turns records into the table the leaderboard, compare and figures read.
The tag names live here and nowhere else: a field added to the record is written and read
in one place.

Pure Python apart from pandas (no torch, no mlflow import at module level): reports import it
without loading model code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from bench.record import flags as flag_io
from bench.record.flags import Flag
from bench.record.values import Measured, Value, decode, encode
from bench.record.values import loads as load_values

TAG = "bench."  # prefix of every tag this package writes
FINISHED, FAILED = "FINISHED", "FAILED"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: the suite run a cell belongs to
# record field -> tag name (without the prefix); the order is the order of the frame's columns
_TAGGED = ("suite", "model", "dataset", "metric", "metric_plugin", "metric_version", "cell_key",
           "repeat", "seed", "version", "reference", "primary", "threads", "held_out")


@dataclass
class DatasetInput:
    """The dataset a cell read, as MLflow's dataset inputs record it (one input per split)."""

    name: str
    digest: str
    splits: dict[str, int]
    source: dict[str, Any]


@dataclass
class CellRecord:
    """One cell run (see the module docstring). `values` holds every measured value, each with
    its interval and bound (bench.record.values.Measured); they become MLflow's flat metric
    keys (`<v>`, `<v>.lo`, `<v>.hi`, `<v>.bound`) only in `to_mlflow` and `from_parts`."""

    suite: str
    model: str
    dataset: str
    metric: str
    repeat: int = 0
    cell_key: str = ""
    metric_plugin: str = ""
    metric_version: str = ""
    seed: int = 0
    version: str = ""
    reference: bool = False  # a calibration row, never ranked
    held_out: bool = False  # the held-out real row: target of `ref` values
    primary: str = ""
    threads: str = ""
    status: str = FINISHED  # FINISHED | FAILED | RUNNING | KILLED
    run_id: str = ""
    start_time: int = 0
    values: dict[str, Measured] = field(default_factory=dict)
    declarations: dict[str, Value] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)
    error: str = ""
    parent: str = ""  # the suite run's id (MLflow's parent run)
    tags: dict[str, str] = field(default_factory=dict)  # the rest (features, samples, ...)
    # written, not read back by `from_run` (the board never needs them)
    run_name: str = ""  # the cell's label: "model / dataset / metric"
    params: dict[str, str] = field(default_factory=dict)  # seed, model.*, dataset.*, metric.*
    dataset_input: DatasetInput | None = None
    artifacts: str = ""  # a folder whose files become the run's artifacts
    traceback: str = ""  # a failed cell's whole traceback: its error.txt

    # ------------------------------------------------------------ to MLflow
    def identity_tags(self) -> dict[str, str]:
        """The tags a run gets when it is created (before any value exists)."""
        out = {f"{TAG}kind": "cell"}
        for name in _TAGGED:
            v = getattr(self, name)
            if name == "held_out" and not v:
                continue
            out[f"{TAG}{name}"] = ("true" if v else "false") if isinstance(v, bool) else str(v)
        return out

    def result_tags(self) -> dict[str, str]:
        """The tags a finished (or failed) computation adds."""
        from bench.record.values import dumps as dump_values

        out = {f"{TAG}{k}": str(v) for k, v in self.tags.items()}
        if self.values:
            out[f"{TAG}values"] = dump_values(self.declarations, list(self.values))
        if self.primary:
            out[f"{TAG}primary"] = self.primary
        if self.flags:
            out[f"{TAG}flags"] = flag_io.dumps(self.flags)
        if self.held_out:
            out[f"{TAG}held_out"] = "true"
        if self.error:
            out[f"{TAG}error"] = self.error[:500]
        return out

    def to_mlflow(self) -> tuple[dict[str, str], dict[str, str], dict[str, float]]:
        """(tags, params, metrics): everything a run of this record holds once it has ended
        (bench.record.writer writes them; `from_run` reads them back)."""
        return ({**self.identity_tags(), **self.result_tags()}, dict(self.params),
                encode(self.values))

    # ------------------------------------------------------------ from MLflow
    @classmethod
    def from_run(cls, run: Any) -> CellRecord:
        """A record from an MLflow `Run` (tags, metrics, status)."""
        return cls.from_parts(run.info.run_id, run.info.status, int(run.info.start_time or 0),
                              run.data.tags, run.data.metrics)

    @classmethod
    def from_parts(cls, run_id: str, status: str, start_time: int, t: Mapping[str, str],
                   metrics: Mapping[str, float]) -> CellRecord:
        """A record from a run's id, status, start time, tags and latest metric values (what
        `from_run` reads off a `Run`, and bench.record.sql off the store's tables)."""
        return cls.from_tags(run_id, status, start_time, t, decode(metrics))

    @classmethod
    def from_tags(cls, run_id: str, status: str, start_time: int, t: Mapping[str, str],
                  values: Mapping[str, Measured]) -> CellRecord:
        """A record from a run's tags and its measured values (bench.record.memory keeps them
        as they are; `from_parts` decodes MLflow's metric keys first)."""
        get = lambda k, d="": t.get(f"{TAG}{k}", d)  # noqa: E731
        return cls(
            suite=get("suite"), model=get("model"), dataset=get("dataset"), metric=get("metric"),
            repeat=int(get("repeat", "0") or 0), cell_key=get("cell_key"),
            metric_plugin=get("metric_plugin"), metric_version=get("metric_version"),
            seed=int(get("seed", "0") or 0), version=get("version"),
            reference=get("reference") == "true", held_out=get("held_out") == "true",
            primary=get("primary"), threads=get("threads"), status=status,
            run_id=run_id, start_time=start_time, values=dict(values),
            declarations=_declarations(get("values"), get("directions")),
            flags=list(_flags(get("flags"))), error=get("error"),
            parent=t.get(PARENT_TAG, ""),
            tags={k[len(TAG):]: v for k, v in t.items() if k.startswith(TAG)})


# ------------------------------------------------------------------ the other runs' tags
# Tag names of runs that are not cells (suite runs, their lease, training runs) and the search
# filters that find runs by them: here too, so that no other module spells a tag name.
KIND = f"{TAG}kind"
SUITE = f"{TAG}suite"
CELL_KEY = f"{TAG}cell_key"
ERROR = f"{TAG}error"
TRAIN_KEY = f"{TAG}train_key"


def q(value: str) -> str:
    """A value quoted for an MLflow search filter (suite names and keys are validated names)."""
    return f"'{value}'"


def cell_filter(suite: str | None = None, key: str | None = None, status: str | None = None) -> str:
    """MLflow search filter for cell runs (of a suite, of one cell key, with a status)."""
    parts = [] if key else [f"tags.`{KIND}` = 'cell'"]
    if key:
        parts.append(f"tags.`{CELL_KEY}` = {q(key)}")
    if suite:
        parts.append(f"tags.`{SUITE}` = {q(suite)}")
    if status:
        parts.append(f"attributes.status = {q(status)}")
    return " and ".join(parts)


def suite_filter(suite: str, status: str) -> str:
    """MLflow search filter for the suite runs of `suite` with `status`."""
    return (f"tags.`{KIND}` = 'suite' and tags.`{SUITE}` = {q(suite)} "
            f"and attributes.status = {q(status)}")


def error_tags(reason: str) -> dict[str, str]:
    """The tag that says why a run ended FAILED or KILLED (any kind of run)."""
    return {ERROR: reason[:500]}


@dataclass
class SuiteRunRecord:
    """The suite run (MLflow's parent of the cell runs): which suite, file, version, commit;
    at its end, how many cells finished, were cached or failed, and regressions found."""

    suite: str
    version: str = ""
    suite_file: str = ""
    git_commit: str | None = None

    def identity_tags(self) -> dict[str, str]:
        out = {KIND: "suite", SUITE: self.suite, f"{TAG}version": self.version,
               f"{TAG}suite_file": self.suite_file}
        if self.git_commit:
            out[f"{TAG}git_commit"] = self.git_commit
        return out

    @staticmethod
    def counts_tags(finished: int, cached: int, failed: int) -> dict[str, str]:
        return {f"{TAG}finished": str(finished), f"{TAG}cached": str(cached),
                f"{TAG}failed": str(failed)}

    @staticmethod
    def regressions_tags(n: int) -> dict[str, str]:
        return {f"{TAG}regressions": str(n)}

    @staticmethod
    def link_tags(suite_run: str, experiment: str) -> dict[str, str]:
        """On the run `mlflow run` created outside the suite's experiment: where the suite run is."""
        return {f"{TAG}suite_run_id": suite_run, f"{TAG}suite_experiment": experiment}


@dataclass
class LeaseStamp:
    """One heartbeat of a live runner on its suite run (bench.record.lease): when, and who."""

    heartbeat: float
    runner: str = ""  # "pid 123 on host"
    pid: int | None = None
    host: str = ""

    def to_tags(self) -> dict[str, str]:
        return {f"{TAG}heartbeat": f"{self.heartbeat:.1f}", f"{TAG}runner": self.runner,
                f"{TAG}runner_pid": "" if self.pid is None else str(self.pid),
                f"{TAG}runner_host": self.host}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], start_time_ms: int) -> LeaseStamp:
        """A suite run's last stamp; a run never stamped: its start time, nobody known."""
        try:
            beat = float(tags.get(f"{TAG}heartbeat", start_time_ms / 1000))
        except ValueError:
            beat = start_time_ms / 1000
        try:
            pid: int | None = int(tags.get(f"{TAG}runner_pid", ""))
        except ValueError:
            pid = None
        return cls(beat, tags.get(f"{TAG}runner", ""), pid, tags.get(f"{TAG}runner_host", ""))


@dataclass
class TrainRunRecord:
    """A training run of a baseline (`bench train`, or a trainable source's first build)."""

    model: str
    train_key: str
    suite: str = ""
    model_key: str = ""
    dataset: str = ""

    def identity_tags(self) -> dict[str, str]:
        return {KIND: "train", f"{TAG}model": self.model, TRAIN_KEY: self.train_key}

    def suite_tags(self) -> dict[str, str]:
        """Added by `bench train`: the suite, its model name and dataset it was trained for."""
        return {SUITE: self.suite, f"{TAG}model_key": self.model_key, f"{TAG}dataset": self.dataset}

    @staticmethod
    def search(key: str) -> str:
        return f"tags.`{TRAIN_KEY}` = {q(key)} and attributes.status = 'FINISHED'"


# A suite's cells share a handful of distinct declaration and flag texts: parse each once
# (100,000 runs would otherwise parse the same JSON 100,000 times).
@lru_cache(maxsize=4096)
def _declarations(values: str, directions: str) -> dict[str, Value]:
    return load_values(values or None, directions or None)


@lru_cache(maxsize=4096)
def _flags(text: str) -> tuple[Flag, ...]:
    return tuple(flag_io.loads(text or None))


FRAME_COLUMNS = ["run_id", "start_time", "suite", "model", "dataset", "metric", "repeat",
                 "cell_key", "reference", "values", "held_out", "primary", "metric_version",
                 "status", "error", "flags"]


def frame(records: list[CellRecord]) -> pd.DataFrame:
    """Records as one table: a row per run, identity columns, `values` (declarations),
    `flags`, `status`, `error`, and one `m:<key>` column per MLflow metric key (a value, its
    `.lo`, `.hi`, `.bound`: bench.record.values.encode), as a run read from MLflow has them."""
    rows = []
    for r in records:
        rows.append({
            "run_id": r.run_id, "start_time": r.start_time, "suite": r.suite, "model": r.model,
            "dataset": r.dataset, "metric": r.metric, "repeat": r.repeat, "cell_key": r.cell_key,
            "reference": r.reference, "values": r.declarations, "held_out": r.held_out,
            "primary": r.primary, "metric_version": r.metric_version, "status": r.status,
            "error": r.error, "flags": list(r.flags),
            **{f"m:{k}": v for k, v in encode(r.values).items()}})
    return pd.DataFrame(rows, columns=None if rows else FRAME_COLUMNS)
