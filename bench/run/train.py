"""`bench train SUITE --model NAME`: train one baseline model of a suite on one of its
datasets, log the training run (params, loss curves, a sample grid, the MLflow model) and
optionally register the model, so a suite can use it via `source: mlflow, uri: models:/...`.

Training goes through the model's own build (disk cache, resumable checkpoints), so a
second `bench train` of the same model reuses the weights, and an interrupted one resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from PIL import Image

from bench.core.errors import BenchError
from bench.infra.grids import grid_counts, sample_grid
from bench.models.base import Generator

GRID_FILE = "samples_grid.png"


@dataclass
class TrainResult:
    run_id: str
    artifact: str
    model_uri: str  # models:/NAME/VERSION when registered, else runs:/RUN/ARTIFACT
    version: str | None = None


def generated_grid(gen: Generator, class_names: list[str], seed: int = 0) -> Image.Image:
    """The trained model's sample grid: 8 images of each of the first classes, one row per
    class (bench.infra.grids), from a fixed seed."""
    counts = grid_counts(len(class_names))
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.from_numpy(counts))
    return sample_grid(gen.sample(len(labels), labels, seed), labels, class_names)


def train_model(suite_path: str, model: str, dataset: str | None = None,
                tracking_uri: str | None = None, register: str | None = None,
                cache_dir: str | None = None, progress: bool = True) -> TrainResult:
    from bench.config.suite import load_suite, resolve_device
    from bench.infra.cache import Cache
    from bench.models.base import BuildContext, ModelSource
    from bench.record.cell_record import TrainRunRecord
    from bench.record.tracking import Tracker, resolve_uri

    suite = load_suite(suite_path, check_resources=False)
    if model not in suite.models:
        raise BenchError(f"suite '{suite.name}' has no model '{model}'; models: "
                         f"{', '.join(suite.models)}.")
    spec = suite.models[model]
    if not (issubclass(spec.cls, ModelSource) and spec.cls.trainable):
        raise BenchError(f"model '{model}' ({spec.plugin}) is not a trainable baseline; "
                         "`bench train` trains `source: baseline` or `source: cgan` models.")
    ds_name = dataset or next(iter(suite.datasets), None)
    if ds_name not in suite.datasets:
        raise BenchError(f"suite '{suite.name}' has no dataset '{ds_name}'; datasets: "
                         f"{', '.join(suite.datasets) or '(none)'}.")
    source = spec.instance()
    cache = Cache(cache_dir or suite.cache_dir)
    data_source = suite.datasets[ds_name].instance()
    ds = data_source.load(cache)  # derived files (image_folder's decoded images) go there
    source.check(ds.info)

    uri = resolve_uri(tracking_uri, suite.tracking_uri)
    parent = os.environ.get("MLFLOW_RUN_ID")  # under `mlflow run train`: a child of its run
    if parent:
        tracker = Tracker(uri, experiment_id=Tracker.experiment_of(uri, run_id=parent))
    else:
        tracker = Tracker(uri, suite.experiment)
    logged: dict[str, str] = {}

    def log_trained(name, key, net, history, params):
        logged["run_id"] = tracker.log_trained_model(parent, name, key, net, history, params)
        logged["artifact"] = name

    ctx = BuildContext(resolve_device(suite.device), suite.seed, cache, progress, log_trained)
    gen = source.build(ds, ctx)
    rid, artifact = logged["run_id"], logged["artifact"]
    tracker.set_tags(rid, TrainRunRecord(artifact, "", suite.name, model, ds_name).suite_tags())
    tracker.log_image(rid, generated_grid(gen, ds.class_names, seed=suite.seed), GRID_FILE)
    if register:
        version = tracker.register_model(rid, artifact, register)
        return TrainResult(rid, artifact, f"models:/{register}/{version}", version)
    return TrainResult(rid, artifact, f"runs:/{rid}/{artifact}")
