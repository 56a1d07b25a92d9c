"""Cell -> MLflow run: resume from finished runs, isolate failures, survive Ctrl-C.

One parent run per suite invocation (or the run `mlflow run` created, which we attach to),
one child run per cell and repeat. Work shared between cells (datasets, generators, the
real-trained classifier) is built once per process and cached on disk across processes.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench.cache import Cache
from bench.errors import BenchError
from bench.suite import Cell, Suite, resolve_device
from bench.tracking import TAG, Tracker, flatten, git_commit, package_version, resolve_uri


@dataclass
class CellOutcome:
    cell: Cell
    status: str  # finished | cached | failed | killed
    run_id: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0


@dataclass
class SuiteReport:
    suite: Suite
    parent_run_id: str
    tracking_uri: str
    experiment_id: str
    outcomes: list[CellOutcome]
    leaderboard: str = ""
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.count("failed") == 0

    def summary(self) -> str:
        import pandas as pd

        rows = [{"cell": o.cell.label, "status": o.status, "seconds": round(o.seconds, 1),
                 "run_id": o.run_id or "", "error": o.error.splitlines()[-1][:80] if o.error else ""}
                for o in self.outcomes]
        head = (f"{self.count('finished')} finished, {self.count('cached')} cached, "
                f"{self.count('failed')} failed, {self.count('killed')} killed"
                f"{' (interrupted)' if self.interrupted else ''}")
        return head + "\n\n" + pd.DataFrame(rows).to_markdown(index=False) if rows else head


class _Shared:
    """Datasets and generators built once per process, keyed by their spec names."""

    def __init__(self, suite: str, tracker: Tracker, parent: str, cache: Cache, device, seed: int,
                 progress: bool):
        self.suite = suite
        self.tracker, self.parent, self.cache = tracker, parent, cache
        self.device, self.seed, self.progress = device, seed, progress
        self.datasets: dict[str, Any] = {}
        self.generators: dict[tuple[str, str], Any] = {}
        self.memo: dict[str, Any] = {}

    def dataset(self, cell: Cell):
        if cell.dataset.key not in self.datasets:
            self.datasets[cell.dataset.key] = cell.dataset.instance().load()
        return self.datasets[cell.dataset.key]

    def generator(self, cell: Cell):
        from bench.models import BuildContext, check_samples

        k = (cell.model.key, cell.dataset.key)
        if k not in self.generators:
            ds = self.dataset(cell)
            ctx = BuildContext(self.device, self.seed, self.cache, self.progress,
                               log_trained=lambda *a: self.tracker.log_trained_model(self.parent, *a))
            gen = cell.model.instance().build(ds, ctx)
            check_samples(cell.model.key, gen, ds)
            self.generators[k] = gen
        return self.generators[k]


def _log(msg: str) -> None:
    tqdm.write(msg)


def run_suite(suite: Suite, tracking_uri: str | None = None, force: bool = False,
              progress: bool = True, cache_dir: str | None = None) -> SuiteReport:
    from bench.html_report import default_ui_url, html_report, mlflow_access
    from bench.leaderboard import build_leaderboard, render
    from bench.metrics.base import Context

    uri = resolve_uri(tracking_uri, suite.tracking_uri)
    attach = os.environ.get("MLFLOW_RUN_ID")
    if attach:
        from mlflow import MlflowClient

        exp_id = MlflowClient(uri).get_run(attach).info.experiment_id
        tracker = Tracker(uri, experiment_id=exp_id)
    else:
        tracker = Tracker(uri, suite.experiment)
    suite_tags = {f"{TAG}kind": "suite", f"{TAG}suite": suite.name, f"{TAG}version": package_version(),
                  f"{TAG}suite_file": str(suite.path)}
    commit = git_commit(suite.path.resolve().parent)
    if commit:
        suite_tags[f"{TAG}git_commit"] = commit
    if attach:
        parent = attach
        tracker.set_tags(parent, suite_tags)  # never re-log the params `mlflow run` logged
    else:
        parent = tracker.create_run(suite.name, suite_tags)
        tracker.log_params(parent, {"seed": str(suite.seed), "repeats": str(suite.repeats),
                                    "device": suite.device, "suite_file": str(suite.path),
                                    "num_cells": str(len(suite.cells))})
    tracker.log_text(parent, suite.text, "suite.yaml")
    device = resolve_device(suite.device)
    cache = Cache(cache_dir or suite.cache_dir)
    shared = _Shared(suite.name, tracker, parent, cache, device, suite.seed, progress)
    _log(f"suite '{suite.name}': {len(suite.cells)} cells on {device}; tracking {uri} "
         f"(experiment id {tracker.experiment_id}, parent run {parent})")

    outcomes: list[CellOutcome] = []
    interrupted = False
    for i, cell in enumerate(suite.cells, 1):
        prefix = f"[{i}/{len(suite.cells)}] {cell.label}"
        existing = None if force else tracker.finished_cell_run(cell.key)
        if existing:
            outcomes.append(CellOutcome(cell, "cached", existing))
            _log(f"{prefix}: cached (run {existing})")
            continue
        if tracker.fail_stale_runs(cell.key, "stale: its runner stopped without ending it (killed?)"):
            _log(f"{prefix}: an earlier run of this cell was left RUNNING by a killed runner; "
                 "marked FAILED, running it again")
        outcome = _run_cell(cell, tracker, parent, shared, progress, Context)
        outcomes.append(outcome)
        if outcome.status == "killed":
            interrupted = True
            _log(f"{prefix}: interrupted; run the suite again to finish the remaining cells")
            break
        vals = "  ".join(f"{k}={v:.4g}" for k, v in outcome.values.items())
        _log(f"{prefix}: {outcome.status} in {outcome.seconds:.1f}s  {vals}"
             + (f"\n    {outcome.error.strip().splitlines()[-1]}" if outcome.error else ""))

    report = SuiteReport(suite, parent, uri, tracker.experiment_id, outcomes, interrupted=interrupted)
    cells_map = {o.cell.key: {"run_id": o.run_id, "status": o.status, "label": o.cell.label}
                 for o in outcomes}
    tracker.log_text(parent, json.dumps(cells_map, indent=1), "cells.json")
    run_ids = [o.run_id for o in outcomes if o.status in ("finished", "cached") and o.run_id]
    if run_ids:
        board = build_leaderboard(tracker.cell_runs(run_ids=run_ids))
        report.leaderboard = render(board, "markdown")
        tracker.log_text(parent, report.leaderboard, "leaderboard.md")
        tracker.log_text(parent, render(board, "csv"), "leaderboard.csv")
        tracker.log_text(parent, html_report(board, *mlflow_access(tracker.client), title=f"Leaderboard: {suite.name}",
                                             experiment_id=tracker.experiment_id, ui_url=default_ui_url(uri)),
                         "leaderboard.html")
    tracker.log_text(parent, report.summary(), "summary.md")
    tracker.set_tags(parent, {f"{TAG}finished": report.count("finished"),
                              f"{TAG}cached": report.count("cached"),
                              f"{TAG}failed": report.count("failed")})
    _log(cache.report())
    if not attach:
        tracker.end(parent, "KILLED" if interrupted else ("FINISHED" if report.ok else "FAILED"))
    return report


def _run_cell(cell: Cell, tracker: Tracker, parent: str, shared: _Shared, progress: bool,
              context_cls) -> CellOutcome:
    metric_cls = cell.metric.cls
    tags = {
        f"{TAG}kind": "cell", f"{TAG}suite": shared.suite,
        f"{TAG}model": cell.model.key, f"{TAG}dataset": cell.dataset.key,
        f"{TAG}metric": cell.metric.key, f"{TAG}metric_plugin": cell.metric.plugin,
        f"{TAG}metric_version": metric_cls.version, f"{TAG}cell_key": cell.key,
        f"{TAG}repeat": str(cell.repeat), f"{TAG}seed": str(cell.seed),
        f"{TAG}version": package_version(),
        f"{TAG}reference": "true" if cell.model.plugin == "reference" else "false",
        f"{TAG}primary": metric_cls.primary,
    }
    run_id = tracker.create_run(cell.label, tags, parent)
    t0 = time.perf_counter()
    try:
        tracker.log_params(run_id, {"seed": str(cell.seed), **flatten(cell.model.resolved(), "model."),
                                    **flatten(cell.dataset.resolved(), "dataset."),
                                    **flatten(cell.metric.resolved(), "metric.")})
        with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
            ds = shared.dataset(cell)
            tracker.log_dataset(run_id, cell.dataset.key, ds.digest,
                                {"train": len(ds.train_y), "val": len(ds.val_y)},
                                cell.dataset.resolved())
            gen = shared.generator(cell)
            ctx = context_cls(shared.device, cell.seed, shared.cache, Path(tmp), progress,
                              _memo=shared.memo)
            ctx.tags.update(getattr(gen, "tags", None) or {})  # e.g. pseudo_labels: true
            ctx.tags.update({f"data_{k}": v for k, v in ds.notes.items()})  # e.g. imbalance
            values = cell.metric.instance().compute(gen, ds, ctx)
            values = {k: float(v) for k, v in values.items()}
            tracker.log_metrics(run_id, values)
            ctx.tags["directions"] = json.dumps({k: metric_cls.is_higher_better(k) for k in values})
            if ctx.tags:
                tracker.set_tags(run_id, {f"{TAG}{k}": v for k, v in ctx.tags.items()})
            tracker.log_artifacts(run_id, Path(tmp))
        tracker.end(run_id, "FINISHED")
        return CellOutcome(cell, "finished", run_id, values, seconds=time.perf_counter() - t0)
    except KeyboardInterrupt:
        tracker.end(run_id, "KILLED")
        return CellOutcome(cell, "killed", run_id, seconds=time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - any failure of one cell must not stop the others
        tb = str(e) if isinstance(e, BenchError) else traceback.format_exc()
        try:
            tracker.log_text(run_id, traceback.format_exc(), "error.txt")
            tracker.set_tags(run_id, {f"{TAG}error": str(e)[:500]})
        finally:
            tracker.end(run_id, "FAILED")
        return CellOutcome(cell, "failed", run_id, error=tb, seconds=time.perf_counter() - t0)
