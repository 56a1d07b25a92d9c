"""The store (bench/infra/store.py): one sampling pass and one feature pass per model, shared by
every metric of a suite; every prefix of the sample stream is class-balanced; generated
images and features persist on disk for a fresh store; two model names with the same
options share one pass; executors group one model's cells."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from bench.config.suite import load_suite
from bench.data.digits import Digits
from bench.executors import group_cells
from bench.features.base import FeatureSpec
from bench.features.classifier import ClassifierFeatures
from bench.infra.cache import Cache
from bench.infra.store import (
    CHUNK,
    GeneratedFeaturesKey,
    GeneratedImagesKey,
    Store,
    balanced_stream,
)
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.models.reference import ReferenceGenerator, ReferenceOptions
from bench.run.runner import run_suite

FEAT = "{name: classifier, classifier: {epochs: 2}}"
CLF = "{epochs: 2}"
TEN = f"""\
name: ten
datasets:
  digits: {{source: digits}}
models:
  noisy: {{source: reference, kind: noise, sigma: 0.3}}
metrics:
  gan_train: {{classifier: {CLF}}}
  gan_test: {{classifier: {CLF}}}
  fid: {{features: {FEAT}}}
  kid: {{features: {FEAT}}}
  precision_recall: {{features: {FEAT}}}
  density_coverage: {{features: {FEAT}}}
  authenticity: {{features: {FEAT}}}
  data_copying: {{features: {FEAT}}}
  intra_fid: {{features: {FEAT}}}
  swd: {{}}
"""
IMAGES, FEATURES = GeneratedImagesKey.kind, GeneratedFeaturesKey.kind


@pytest.fixture(scope="module")
def digits():
    return Digits().load()


@pytest.fixture
def passes(monkeypatch):
    """Counts the generator's sampling calls (stream blocks) and the feature extractor's rows."""
    seen: Counter[str] = Counter()
    starts: list[int] = []
    stream, forward = ReferenceGenerator.sample_stream, ClassifierFeatures._forward
    sample = ReferenceGenerator.sample
    inside = []

    def counting_stream(self, labels, start, seed):
        seen["sample_calls"] += 1
        seen["sampled_images"] += len(labels) - start
        starts.append(start)
        inside.append(1)
        try:
            return stream(self, labels, start, seed)
        finally:
            inside.pop()

    def counting_sample(self, n, labels, seed):
        if not inside:  # a call that bypasses the stream
            seen["direct_calls"] += 1
            seen["direct_images"] += n
        return sample(self, n, labels, seed)

    def counting_forward(self, x):
        seen["feature_rows"] += x.shape[0]
        return forward(self, x)

    monkeypatch.setattr(ReferenceGenerator, "sample_stream", counting_stream)
    monkeypatch.setattr(ReferenceGenerator, "sample", counting_sample)
    monkeypatch.setattr(ClassifierFeatures, "_forward", counting_forward)
    seen.starts = starts  # type: ignore[attr-defined]
    return seen


def _store_of(report) -> Store:
    assert report.local is not None  # the local executor ran the cells in this process
    return report.local.store


def _cell_tags(uri: str, report) -> dict[tuple[str, str], dict[str, str]]:
    client = MlflowClient(uri)
    runs = client.search_runs([report.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{report.parent_run_id}'")
    return {(r.data.tags["bench.model"], r.data.tags["bench.metric"]): r.data.tags for r in runs}


# ---------------------------------------------------------------- one pass for ten metrics
def test_ten_metrics_share_one_sampling_pass_and_one_feature_pass(write_suite, tracking_uri,
                                                                  passes, digits, one_thread):
    report = run_suite(load_suite(write_suite(TEN)), tracking_uri=tracking_uri, progress=False)
    assert report.ok, report.summary()
    n_train, n_val = len(digits.train_y), len(digits.val_y)
    # GAN-train needs the most: n_train to train on + n_val for TSTS, in whole chunks
    stream = -(-(n_train + n_val) // CHUNK) * CHUNK
    assert passes["sampled_images"] == stream and sorted(passes.starts) == list(range(0, stream, CHUNK))
    # outside the stream only the build-time probe (bench.models.base.check_samples, 32
    # images): the sample grid too comes from the stream
    assert passes["direct_calls"] == 1 and passes["direct_images"] == 32
    # one pass over the generated images the feature metrics use (n_train: exactly the rows
    # asked for, not the stream's whole chunks); the real train and val features once each
    assert passes["feature_rows"] == n_train + n_train + n_val
    store = _store_of(report)
    assert store.computed[IMAGES] == 1 and store.computed[FEATURES] == 1
    # images reused by gan_test, the feature pass (fid), swd and the model's sample grid;
    # features by the other 6
    assert store.reused[IMAGES] == 4 and store.reused[FEATURES] == 6
    assert "generated_images 1 computed" in store.report()

    tags = _cell_tags(tracking_uri, report)
    samples = {metric: t.get("bench.samples") for (_, metric), t in tags.items()}
    feats = {metric: t.get("bench.fake_features") for (_, metric), t in tags.items()}
    assert samples == {m: ("computed" if m == "gan_train" else "reused") for m in samples}
    feature_metrics = {"fid", "kid", "precision_recall", "density_coverage", "authenticity",
                       "data_copying", "intra_fid"}
    assert feats == {m: ("computed" if m == "fid" else "reused") if m in feature_metrics else None
                     for m in feats}


PROTOCOL = """\
name: protocol
datasets:
  digits: {source: digits}
models:
  noisy: {source: reference, kind: noise, sigma: 0.3}
metrics:
  gan_train: {classifier: {epochs: 1}}
  gan_train_curve: {classifier: {epochs: 1}, fractions: [0.1, 0.5, 1.0]}
  augmentation: {classifier: {epochs: 1}, fractions: [0.2, 1.0]}
  balancing: {classifier: {epochs: 1}, synthetic_only: true}
  nearest_neighbours: {classifier: {epochs: 1}}
"""


@pytest.mark.filterwarnings("ignore:balancing")  # the reference source cannot be retrained
def test_protocol_metrics_and_the_grid_take_their_images_from_the_one_stream(
        write_suite, tracking_uri, passes, digits, one_thread):
    """The learning curve, augmentation, balancing and nearest neighbours ask for images by
    class; they get the first images of each class in the model's one stream."""
    report = run_suite(load_suite(write_suite(PROTOCOL)), tracking_uri=tracking_uri, progress=False)
    assert report.ok, report.summary()
    stream = -(-(len(digits.train_y) + len(digits.val_y)) // CHUNK) * CHUNK
    assert passes["direct_images"] == 32, passes  # outside the stream only the build probe
    # one stream, sampled once in chunks: as long as the longest by-class request needs
    # (balancing's balanced augmented_all arm tops every class up to 2x the largest class,
    # a prefix longer than train + val), never a second pass
    assert passes["sampled_images"] % CHUNK == 0 and stream <= passes["sampled_images"] <= 2 * stream
    store = _store_of(report)
    # computed at most twice: drawn, then extended once for balancing (the prefix is never
    # sampled again: the sampled count above is one stream's length)
    assert store.computed[IMAGES] <= 2 and not store.computed["generated_by_class"]
    tags = _cell_tags(tracking_uri, report)
    # balancing extends the stream (its balanced augmented_all arm needs a longer prefix)
    assert {m: t.get("bench.samples") for (_, m), t in tags.items()} == {
        m: "computed" if m in ("gan_train", "balancing") else "reused" for (_, m) in tags}


def test_by_class_requests_are_nested_first_images_of_each_class(tmp_path, digits, passes):
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    ctx = _ctx(tmp_path)
    small = np.array([3, 0, 5, 1, 1, 1, 1, 1, 1, 2])
    xs, ys = ctx.generated_by_class(gen, digits, small)
    assert torch.equal(torch.bincount(ys, minlength=10), torch.from_numpy(small))
    x, y = ctx.generated(gen, digits, CHUNK)
    for c in range(10):  # the first images of class c in the stream, in stream order
        assert torch.equal(xs[ys == c], x[y == c][: small[c]])
    big, _ = ctx.generated_by_class(gen, digits, np.full(10, 100))  # extends the stream
    assert passes["direct_calls"] == 0 and passes["sampled_images"] == 2 * CHUNK
    assert ctx.generated_by_class(gen, digits, np.zeros(10, int))[0].shape == (0, 1, 8, 8)
    assert big.shape == (1000, 1, 8, 8)


def test_a_request_far_from_the_stream_balance_is_sampled_apart_once(tmp_path, digits, passes):
    """A class with 5 training images is 0.4% of the stream: 100 of them would need a prefix
    of about 25,000 images; they are sampled apart, once."""
    y = digits.train_y.numpy()
    keep = np.concatenate([np.flatnonzero(y == 0)[:5], np.flatnonzero(y != 0)])
    rare = digits.restrict_train(torch.from_numpy(keep), "class 0 rare")
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    ctx = _ctx(tmp_path)
    counts = np.full(10, 100)
    x, labels = ctx.generated_by_class(gen, rare, counts)
    assert torch.equal(torch.bincount(labels, minlength=10), torch.from_numpy(counts))
    assert x.shape == (1000, 1, 8, 8) and not ctx.store.computed[IMAGES]
    assert ctx.store.computed["generated_by_class"] == 1 and passes["sampled_images"] == 1000
    again, _ = ctx.generated_by_class(gen, rare, counts)
    assert torch.equal(again, x) and ctx.store.reused["generated_by_class"] == 1
    # a request near the stream's balance still comes from the stream
    ctx.generated_by_class(gen, rare, np.array([1, 50, 50, 50, 50, 50, 50, 50, 50, 50]))
    assert ctx.store.computed[IMAGES] == 1


def test_two_names_with_the_same_options_share_one_pass(write_suite, tracking_uri, passes, digits,
                                                         one_thread):
    text = f"""\
        name: twins
        datasets:
          digits: {{source: digits}}
        models:
          a: {{source: reference, kind: noise, sigma: 0.3}}
          other: {{source: reference, kind: blur}}
          b: {{source: reference, kind: noise, sigma: 0.3}}
        metrics:
          fid: {{features: {FEAT}, bootstrap: 0}}
        """
    suite = load_suite(write_suite(text))
    groups = group_cells(suite.cells)
    assert [[c.model.key for c in g] for g in groups] == [["a", "b"], ["other"]]
    report = run_suite(suite, tracking_uri=tracking_uri, progress=False)
    assert report.ok, report.summary()
    stream = -(-len(digits.train_y) // CHUNK) * CHUNK
    assert passes["sampled_images"] == 2 * stream  # noise (a and b) once, blur once
    tags = _cell_tags(tracking_uri, report)
    assert len(tags) == 3  # still one row per name
    assert tags[("a", "fid")]["bench.samples"] == "computed"
    assert tags[("b", "fid")]["bench.samples"] == "reused"
    assert tags[("other", "fid")]["bench.samples"] == "computed"
    fid = {m: o.values["fid"].x for o in report.outcomes for m in [o.cell.model.key]}
    assert fid["a"] == fid["b"] != fid["other"]


# ---------------------------------------------------------------- the stream's label order
@pytest.mark.parametrize("seed", range(6))
def test_every_prefix_is_class_balanced(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 25))
    counts = rng.integers(1, 120, k)
    if seed % 2:
        counts[0] = 900  # a dominant class
    y = torch.from_numpy(np.repeat(np.arange(k), counts))
    n = int(counts.sum())
    labels = balanced_stream(y, k, n + 300, seed).numpy()
    share = counts / counts.sum()
    have = np.cumsum(np.eye(k, dtype=int)[labels], axis=0)  # per-class counts of each prefix
    m = np.arange(1, len(labels) + 1)[:, None]
    assert np.abs(have - m * share).max() < 1  # within +-1 of m x share
    assert np.array_equal(have[n - 1], counts)  # the training size: exactly its counts
    assert np.array_equal(balanced_stream(y, k, 57, seed).numpy(), labels[:57])  # prefix-stable


def _ctx(tmp_path, store=None, seed=0) -> Context:
    return Context(torch.device("cpu"), seed, Cache(tmp_path / "cache"), tmp_path / "art",
                   progress=False, store=store or Store(Cache(tmp_path / "cache")))


def test_a_request_is_a_prefix_and_a_longer_one_samples_only_new_chunks(tmp_path, digits, passes):
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    ctx = _ctx(tmp_path)
    x100, y100 = ctx.generated(gen, digits, 100)
    assert x100.shape == (100, *digits.image_shape) and x100.dtype == torch.uint8
    x, y = ctx.generated(gen, digits, 1500)  # a second chunk, the first one kept
    assert passes.starts == [0, CHUNK]
    assert torch.equal(x[:100], x100) and torch.equal(y[:100], y100)
    assert ctx.store.computed[IMAGES] == 2
    ctx.generated(gen, digits, 700)
    assert ctx.store.reused[IMAGES] == 1 and passes["sample_calls"] == 2
    # the same images whatever was asked before: a fresh store asked for 1500 at once
    fresh = _ctx(tmp_path / "fresh")
    x2, y2 = fresh.generated(gen, digits, 1500)
    assert torch.equal(x2, x) and torch.equal(y2, y)
    # a default request (training size) has exactly the training counts
    _, yt = ctx.generated(gen, digits)
    assert torch.equal(torch.bincount(yt, minlength=10), torch.bincount(digits.train_y, minlength=10))
    # another seed (repeat) is another stream
    assert not torch.equal(_ctx(tmp_path, ctx.store, seed=1).generated(gen, digits, 100)[0], x100)


def test_the_real_reference_stream_is_the_training_set(tmp_path, digits):
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="real"))
    x, y = _ctx(tmp_path).generated(gen, digits)

    def rows(a, b):
        return sorted(zip(a.flatten(1).tolist(), b.tolist(), strict=True))

    assert rows(x, y) == rows(digits.train_x, digits.train_y)  # the upper-bound row


def test_features_are_one_pass_with_logits_and_prefixes(tmp_path, digits, passes, one_thread):
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    ctx = _ctx(tmp_path)
    spec = FeatureSpec(name="classifier", classifier={"epochs": 2})
    fid = METRICS.get("fid")(METRICS.get("fid").Options(features=spec, bootstrap=0))
    fid.compute(gen, digits, ctx)
    is_ = METRICS.get("inception_score")
    out = is_(is_.Options(features=spec, splits=2)).compute(gen, digits, ctx)
    assert out["classifier_is_mean"] > 1
    feats, labels = ctx.fake_features_and_labels(gen, digits, spec, n=300)
    (f, logits), _ = ctx.fake_features_and_labels(gen, digits, spec, n=300, logits=True)
    assert torch.equal(f, feats) and logits.shape == (300, 10) and len(labels) == 300
    # FID, IS and the two requests above: one extraction over the generated images
    assert ctx.store.computed[FEATURES] == 1 and ctx.store.reused[FEATURES] == 3
    real_rows = len(digits.train_y)  # generated: as many rows as asked, not whole chunks
    assert passes["feature_rows"] == real_rows + real_rows


# ---------------------------------------------------------------- disk persistence
def test_a_fresh_store_reads_samples_and_features_from_disk(tmp_path, digits, passes, one_thread):
    cache = Cache(tmp_path / "cache")
    spec = FeatureSpec(name="classifier", classifier={"epochs": 2})

    def fresh() -> tuple[Context, ReferenceGenerator]:
        """What a new worker process has: a new store, a new generator object, one fingerprint."""
        store = Store(cache)
        gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
        store.identify(gen, "fingerprint-of-noise")
        return _ctx(tmp_path, store), gen

    ctx, gen = fresh()
    x, _ = ctx.generated(gen, digits, 500)
    f = ctx.fake_features(gen, digits, spec, 500)
    assert passes["sample_calls"] == 1 and list((tmp_path / "cache" / IMAGES).glob("*.npy"))

    ctx2, gen2 = fresh()
    f2 = ctx2.fake_features(gen2, digits, spec, 500)  # features alone: no image is read
    assert torch.equal(f2, f) and ctx2.store.loaded[FEATURES] == 1 and not ctx2.store.loaded[IMAGES]
    x2, _ = ctx2.generated(gen2, digits, 500)
    assert torch.equal(x2, x) and ctx2.store.loaded[IMAGES] == 1
    assert passes["sample_calls"] == 1 and ctx2.store.computed[IMAGES] == 0

    # a longer request extends the persisted stream with the missing chunks only
    x3, _ = ctx2.generated(gen2, digits, 1500)
    assert passes.starts == [0, CHUNK] and torch.equal(x3[:500], x)

    # opt out: nothing is written; a generator without a fingerprint never persists
    off = tmp_path / "off"
    store = Store(Cache(off), persist=False)
    store.identify(gen, "fingerprint-of-noise")
    _ctx(off, store).generated(gen, digits, 10)
    _ctx(off / "anon").generated(ReferenceGenerator(digits, ReferenceOptions(kind="blur")), digits, 10)
    assert not list(off.rglob("*.npy"))


def test_a_damaged_persisted_entry_is_resampled(tmp_path, digits, passes):
    cache = Cache(tmp_path / "cache")
    store = Store(cache)
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    store.identify(gen, "fp")
    x, _ = _ctx(tmp_path, store).generated(gen, digits, 10)
    x = x.clone()  # a persisted stream is a memory map of its file, which is damaged in place here
    for p in (tmp_path / "cache" / IMAGES).glob("*.npy"):
        p.write_bytes(b"not an array")
    store2 = Store(cache)
    store2.identify(gen, "fp")
    x2, _ = _ctx(tmp_path, store2).generated(gen, digits, 10)
    assert torch.equal(x2, x) and store2.computed[IMAGES] == 1 and passes["sample_calls"] == 2


def test_memory_keeps_the_latest_streams_only(tmp_path, digits):
    store = Store(Cache(tmp_path / "cache"), max_streams=1)
    ctx = _ctx(tmp_path, store)
    a = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    b = ReferenceGenerator(digits, ReferenceOptions(kind="blur"))
    ctx.generated(a, digits, 10)
    ctx.generated(b, digits, 10)  # a's images leave memory
    ctx.generated(a, digits, 10)
    assert store.computed[IMAGES] == 3 and store.reused[IMAGES] == 0


def test_damaged_real_side_cache_entries_are_computed_again(tmp_path, digits, one_thread):
    """A truncated real-classifier or real-features file (a full disk, a killed copy) is a
    miss, recomputed and rewritten, never an error or a trusted value."""
    from bench.classifiers.train import ClassifierConfig

    spec = FeatureSpec(name="classifier", classifier={"epochs": 1})
    first = _ctx(tmp_path)
    feats = first.real_features(digits, spec)
    first.real_classifier(digits, ClassifierConfig(epochs=1))
    entries = [p for p in (tmp_path / "cache").rglob("*.pt") if p.parent.name.startswith("real_")]
    assert {p.parent.name for p in entries} == {"real_classifier", "real_features"}
    for p in entries:
        p.write_bytes(p.read_bytes()[:100])
    again = _ctx(tmp_path)  # a fresh store: reads the disk
    assert torch.allclose(again.real_features(digits, spec), feats, atol=1e-5)
    assert again.cache.misses["real_features"] == 1 and again.cache.misses["real_classifier"] == 1
    third = _ctx(tmp_path)
    third.real_features(digits, spec)
    assert third.cache.hits["real_features"] == 1 and not third.cache.misses  # rewritten
