"""The protocol metrics through the real runner: values and artifacts land in MLflow, and
real-data work is done once for K models (and not again by a later run on the same cache)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from mlflow import MlflowClient

import bench.classifiers.real
import bench.metrics._protocol
from bench.config.suite import load_suite
from bench.record.values import encode, is_interval
from bench.run.runner import run_suite

SUITE = """\
name: protocol-tiny
seed: 0
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
  dropped: {source: reference, kind: mode_drop}
metrics:
  gan_train_curve:
    classifier: {epochs: 8}
    fractions: [0.1, 1.0]
  augmentation:
    classifier: {epochs: 5}
    fractions: [0.1]
    num_generated: 300
  balancing:
    classifier: {epochs: 5}
  nearest_neighbours:
    classifier: {epochs: 5}
    num_samples: 200
    per_class: 1
    k: 3
"""


def _iv(*names: str) -> set[str]:
    """The values with their 95% intervals (`<value>.lo`, `<value>.hi`)."""
    return {n + s for n in names for s in ("", ".lo", ".hi")}


EXPECTED = {
    # + effective_size and effective_ratio: with an interval on the real curve, a bound off it
    "gan_train_curve": (_iv("best_gan_train_acc", "real_curve_best_acc"),
                        {"gan_train_curve.csv", "gan_train_curve.png"}),
    "augmentation": (_iv("mean_aug_gain", "real_acc_at_0.1", "aug_acc_at_0.1", "aug_gain_at_0.1"),
                     {"augmentation.csv", "augmentation.png"}),
    "balancing": (_iv(*(f"{s}_{v}" for s in ("imbalanced", "oversampled_real", "balanced_gen",
                                             "balanced_real", "synthetic_only", "augmented_all")
                        for v in ("acc", "bacc", "minority_recall")),
                      "balancing_gain", "balancing_gain_over_oversampled"),
                  {"balancing_per_class.csv", "balancing.png"}),
    "nearest_neighbours": (_iv("gen_nn_similarity", "val_nn_similarity", "nn_similarity_gap"),
                           {"nearest_neighbours.png", "nearest_neighbours.csv"}),
}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/test_protocol.py: 2 spinning threads on a shared 2-core box
    yield
    torch.set_num_threads(before)


@pytest.fixture
def trainings(monkeypatch) -> Counter:
    """Counts every classifier training by its description (real classifier included)."""
    seen: Counter = Counter()

    def counting(original):
        def train(cfg, x, y, *args, desc: str = "", **kw):
            seen[(desc, len(y), cfg.epochs)] += 1
            return original(cfg, x, y, *args, desc=desc, **kw)
        return train

    for mod in (bench.metrics._protocol, bench.classifiers.real):
        monkeypatch.setattr(mod, "train_classifier", counting(mod.train_classifier))
    return seen


def _real_only(seen: Counter) -> Counter:
    return Counter({k: n for k, n in seen.items()
                    if "generated" not in k[0] and "GAN-train" not in k[0]})


def test_protocol_metrics_through_the_runner(write_suite, tracking_uri, tmp_path, trainings):
    path = write_suite(SUITE)
    cache = str(tmp_path / "cache")
    report = run_suite(load_suite(path), tracking_uri=tracking_uri, progress=False, cache_dir=cache)
    assert report.ok and report.count("finished") == 8, report.summary()

    client = MlflowClient(tracking_uri)
    for o in report.outcomes:
        metric = o.cell.metric.key
        keys, artifacts = EXPECTED[metric]
        run = client.get_run(o.run_id)
        if metric == "gan_train_curve":
            keys = keys | {v + s for v in ("effective_size", "effective_ratio")
                           for s in (("", ".bound") if "effective_size.bound" in run.data.metrics
                                     else ("", ".lo", ".hi"))}
            # the saturation point: a size with its interval, or a bound when the curve is
            # still rising at its largest size (or flat from its first)
            keys = keys | {"saturation_size" + s for s in (
                ("", ".bound") if "saturation_size.bound" in run.data.metrics else ("", ".lo", ".hi"))}
        assert run.info.status == "FINISHED"
        assert set(run.data.metrics) == keys, metric
        assert artifacts <= {a.path for a in client.list_artifacts(o.run_id)}, metric
        declared = json.loads(run.data.tags["bench.values"])
        assert set(declared) == {k for k in keys if not is_interval(k)}
    by = {(o.cell.model.key, o.cell.metric.key): encode(o.values) for o in report.outcomes}
    assert by[("dropped", "gan_train_curve")]["effective_size"] < by[("real", "gan_train_curve")]["effective_size"]
    assert by[("real", "balancing")]["balancing_gain"] > 0
    # beyond re-balancing the real images, a generator missing the rare classes adds nothing
    assert (by[("dropped", "balancing")]["balancing_gain_over_oversampled"]
            < by[("real", "balancing")]["balancing_gain_over_oversampled"] - 0.05)
    leak = {o.cell.model.key: client.get_run(o.run_id).data.tags.get("bench.balancing_leak")
            for o in report.outcomes if o.cell.metric.key == "balancing"}
    assert leak == {"real": "possible", "dropped": "possible"}  # not trained by the suite
    assert json.loads(client.get_run(report.outcomes[-1].run_id).data.tags["bench.values"])[
        "nn_similarity_gap"] == {"role": "score", "ideal": "target", "aspect": "memorisation",
                                 "target": 0.0, "ref": True}

    # real-only work ran once for two models; generator work ran once per model
    real_only = _real_only(trainings)
    assert real_only and max(real_only.values()) == 1, real_only
    assert sum(n for k, n in trainings.items() if k[0].startswith("GAN-train")) == 2 * 2
    # the suite's real classifier (shared by nearest_neighbours) was trained once
    assert sum(n for k, n in trainings.items() if k[0] == "train real classifier") == 1

    # a later run (new process state, same on-disk cache) redoes only the generator work
    trainings.clear()
    again = run_suite(load_suite(path), tracking_uri=tracking_uri, progress=False, cache_dir=cache,
                      force=True)
    assert again.ok and again.count("finished") == 8
    assert not _real_only(trainings), _real_only(trainings)
    assert {(o.cell.model.key, o.cell.metric.key): encode(o.values) for o in again.outcomes} == by
