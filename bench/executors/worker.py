"""What runs one cell, wherever it runs: in the runner's process, a worker process pinned
to a GPU, a Ray task or a Slurm job. Everything a worker needs travels in a picklable
`WorkerEnv`. A worker computes a cell into a `CellRecord` and never talks to MLflow: it hands
the record to a `RecordStore` (bench.record.writer: `begin` creates the run, `finish` writes
the rest), the one writer. Datasets and generators are built once per process.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError
from bench.executors.cells import Cell, resolve_device
from bench.executors.threads import current as current_threads
from bench.infra.cache import Cache
from bench.infra.grids import grid_counts, sample_grid
from bench.infra.output_checks import output_flags
from bench.infra.store import Store, generator_fingerprint, sharing_tags
from bench.record.cell_record import FAILED, FINISHED, CellRecord, DatasetInput
from bench.record.flags import merge as merge_flags
from bench.record.tracking import flatten, package_version
from bench.record.values import Measured, decode
from bench.record.writer import RecordError, RecordKept, RecordStore


@dataclass
class CellOutcome:
    cell: Cell
    status: str  # finished | cached | failed | killed
    run_id: str | None = None
    values: dict[str, Measured] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0



@dataclass(frozen=True)
class WorkerEnv:
    """The run context of a cell, as plain data (it crosses process and machine borders)."""

    uri: str
    experiment_id: str
    parent: str
    suite: str
    seed: int
    device: str = "auto"
    cache_dir: str | None = None
    progress: bool = False


class Shared:
    """Datasets and generators built once per process, keyed by their spec names, and the
    process's store (bench.infra.store) of work shared between cells: a generator is named there
    by its fingerprint, so two model names with the same options share their samples."""

    def __init__(self, suite: str, records: RecordStore, parent: str, cache: Cache, device,
                 seed: int, progress: bool, tracking_uri: str | None = None):
        self.suite = suite
        self.tracking_uri = tracking_uri  # where `source: mlflow` models are read from
        self.records, self.parent, self.cache = records, parent, cache
        self.device, self.seed, self.progress = device, seed, progress
        self.datasets: dict[str, Any] = {}
        self.generators: dict[tuple[str, str, int], Any] = {}
        self.grids: set[tuple[str, str, int]] = set()  # (model, dataset, seed) with a sample grid logged
        self.store = Store(cache)

    def dataset(self, cell: Cell):
        if cell.dataset.key not in self.datasets:
            source = cell.dataset.instance()
            # derived files (image_folder's decoded images) go to the suite's cache
            self.datasets[cell.dataset.key] = source.load(self.cache)
        return self.datasets[cell.dataset.key]

    def first_grid(self, cell: Cell) -> bool:
        """True once per (model, dataset, generator seed) in this process: the cell that logs
        the model's sample grid."""
        k = (cell.model.key, cell.dataset.key, self.generator_seed(cell))
        if k in self.grids:
            return False
        self.grids.add(k)
        return True

    def generator_seed(self, cell: Cell) -> int:
        """The seed a cell's generator is built with. A trainable source (trained on first use)
        is trained once per repeat with the repeat's seed, so the spread over repeats includes
        training variance; repeat 0 has the suite's seed, hence the same training cache entry
        as `bench train` and as `repeats: 1`. Other sources are built once, with the suite's."""
        return cell.seed if getattr(cell.model.cls, "trainable", False) else self.seed

    def generator(self, cell: Cell):
        from bench.models import BuildContext, check_samples

        seed = self.generator_seed(cell)
        k = (cell.model.key, cell.dataset.key, seed)
        if k not in self.generators:
            ds = self.dataset(cell)
            ctx = BuildContext(self.device, seed, self.cache, self.progress,
                               log_trained=lambda *a: self.records.log_trained_model(self.parent, *a),
                               tracking_uri=self.tracking_uri)
            gen = cell.model.instance().build(ds, ctx)
            check_samples(cell.model.key, gen, ds)
            self.store.identify(gen, generator_fingerprint(cell.model.resolved(), seed, ds.digest),
                                persist=cell.model.cls.persist_samples)
            self.generators[k] = gen
        return self.generators[k]



class Worker:
    """What one process keeps between the cells it runs: per suite run (`WorkerEnv`) the
    datasets, generators and store (`Shared`), and the device the process is pinned to.

    Owned by whoever runs cells in the process: the local executor object (cells in the
    runner's process), a worker pool's process (bench.executors.local), a Ray actor, a Slurm
    job. Nothing is kept at module level, so two suite runs in one process (bench.evaluate,
    tests) share nothing by accident and a finished run's state goes with its executor."""

    def __init__(self, device: str | None = None, records: RecordStore | None = None):
        self.device = device  # a GPU pool pins each process to one device
        self.records = records  # None: a RecordWriter over env.uri, made per suite run
        self.shared: dict[WorkerEnv, Shared] = {}

    def shared_for(self, env: WorkerEnv) -> Shared:
        if env not in self.shared:
            records = self.records
            if records is None:
                from bench.record.spool import Spool
                from bench.record.tracking import Tracker
                from bench.record.writer import RecordWriter

                # a finished cell outlives a store outage: its record waits in the cache
                records = RecordWriter(Tracker(env.uri, experiment_id=env.experiment_id),
                                       Spool.for_store(Cache(env.cache_dir).root, env.uri,
                                                       env.experiment_id))
            device = resolve_device(self.device or env.device)
            self.shared[env] = Shared(env.suite, records, env.parent, Cache(env.cache_dir), device,
                                      env.seed, env.progress, env.uri)
        return self.shared[env]

    def execute(self, cell: Cell, env: WorkerEnv) -> CellOutcome:
        """Entry point of every executor: run one cell and record it under env.parent."""
        shared = self.shared_for(env)
        return run_cell(cell, shared.records, env.parent, shared, env.progress)


def run_cell(cell: Cell, records: RecordStore, parent: str, shared: Shared, progress: bool
             ) -> CellOutcome:
    """Compute one cell into a CellRecord; `records` creates its run first (so that a killed
    runner leaves a run the next one marks stale) and writes the result."""
    metric_cls = cell.metric.cls
    record = CellRecord(
        suite=shared.suite, model=cell.model.key, dataset=cell.dataset.key, metric=cell.metric.key,
        repeat=cell.repeat, cell_key=cell.key, metric_plugin=cell.metric.plugin,
        metric_version=metric_cls.version, seed=cell.seed, version=package_version(),
        reference=cell.model.plugin == "reference" and not getattr(cell.model.options, "ranked", False),
        primary=metric_cls.primary,
        threads=str(current_threads()),  # CPU threads the cell ran with (bench.executors.threads)
        parent=parent, run_name=cell.label,
        params={"seed": str(cell.seed), **flatten(cell.model.resolved(), "model."),
                **flatten(cell.dataset.resolved(), "dataset.")})
    t0 = time.perf_counter()
    try:
        run_id = records.begin(record)
    except RecordError as e:
        return CellOutcome(cell, "failed", None, error=str(e))
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
            _compute(cell, record, shared, Path(tmp), progress)
            record.status, record.artifacts = FINISHED, tmp
            records.finish(record)
        return CellOutcome(cell, "finished", run_id, record.values, seconds=time.perf_counter() - t0)
    except KeyboardInterrupt:
        record.status = "KILLED"
        try:
            records.finish(record)
        except RecordError:
            pass
        return CellOutcome(cell, "killed", run_id, seconds=time.perf_counter() - t0)
    except RecordKept as e:  # the store is away: the record waits on disk, nothing is lost
        return CellOutcome(cell, "finished", run_id or None, record.values,
                           error=f"kept: {e}", seconds=time.perf_counter() - t0)
    except RecordError as e:  # the values were computed but could not be written
        return CellOutcome(cell, "failed", run_id, error=f"{e}; the next run retries the cell",
                           seconds=time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - any failure of one cell must not stop the others
        text = str(e) if isinstance(e, BenchError) else traceback.format_exc()
        record.status, record.artifacts = FAILED, ""
        record.error = str(e).strip()[:500] or type(e).__name__
        record.traceback = traceback.format_exc()
        try:
            records.finish(record)
        except RecordError as log_err:  # e.g. the tracking server went away
            text += (f"\n(the failure could not be recorded in MLflow either: {log_err}; the "
                     "next run marks this run FAILED and retries the cell)")
        return CellOutcome(cell, "failed", run_id, error=text, seconds=time.perf_counter() - t0)


def _compute(cell: Cell, record: CellRecord, shared: Shared, tmp: Path, progress: bool) -> None:
    """The cell's values, flags, tags, params and artifacts (under `tmp`), into `record`.
    Touches no tracking store."""
    from bench.metrics.base import Context

    metric_cls = cell.metric.cls
    ds = shared.dataset(cell)
    # the metric's options as used on this data (classifier recipes resolved, data-sized
    # defaults filled in), not the declared None
    record.params.update(flatten({**cell.metric.resolved(),
                                  **cell.metric.instance().used_options(ds)}, "metric."))
    record.dataset_input = DatasetInput(cell.dataset.key, ds.digest,
                                        {"train": len(ds.train_y), "val": len(ds.val_y)},
                                        cell.dataset.resolved())
    gen = shared.generator(cell)
    ctx = Context(shared.device, cell.seed, shared.cache, tmp, progress,
                  store=shared.store, source=cell.model.instance(),
                  generator_seed=shared.generator_seed(cell))
    ctx.tags["generator_seed"] = str(shared.generator_seed(cell))
    ctx.tags.update(getattr(gen, "tags", None) or {})  # e.g. pseudo_labels: true
    ctx.tags.update({f"data_{k}": v for k, v in ds.notes.items()})  # e.g. imbalance
    before = shared.store.counts()
    # a metric returns flat keys (`<v>.lo`, `<v>.hi`, `<v>.bound`): the record holds them typed
    values = decode({k: float(v) for k, v in cell.metric.instance().compute(gen, ds, ctx).items()})
    ctx.tags.update(sharing_tags(before, shared.store.counts()))  # samples: computed|reused
    # (not drawn for a store that keeps no artifacts: bench.record.memory)
    if getattr(shared.records, "keeps_artifacts", True) and shared.first_grid(cell):
        # every model's samples, one row per class, once: after
        # the metric, so they are the first of a stream it sampled (not a chunk before it)
        try:
            x, y = ctx.generated_by_class(gen, ds, grid_counts(ds.num_classes))
            sample_grid(x, y, ds.class_names).save(ctx.artifact("samples.png"))
        except Exception as e:  # noqa: BLE001 - a picture never costs the cell its values
            ctx.tags["samples_grid"] = f"failed: {type(e).__name__}: {e}"[:250]
    record.values = values
    record.declarations = metric_cls.values
    if metric_cls.primary not in values:  # e.g. classifier_is_mean for is_mean
        record.primary = next((k for k in values if metric_cls.value(k).role == "score"), "")
    # the output checks of the model's stream (range, saturation, constant) and the
    # metric's own evidence (e.g. GAN-test near chance): the verdict's gates
    record.flags = merge_flags(output_flags(gen), ctx.flags)
    record.tags = dict(ctx.tags)
    record.held_out = ctx.tags.get("held_out") == "true"
