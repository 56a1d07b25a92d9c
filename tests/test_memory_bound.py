"""Bounded memory: the classifier loop moves batches (the whole uint8 set goes to the device
only within `DEVICE_DATA_BUDGET`), image folders decode once into a memory-mapped cache file,
persisted sample streams and their features are memory-mapped, and a whole protocol on a
5,000-image 3x32x32 set stays under a peak RSS derived from its parts (the slow test)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import child_env
from PIL import Image

import bench.classifiers.train as train_mod
from bench.classifiers.train import ClassifierConfig, TrainingData, train_classifier
from bench.data.digits import Digits
from bench.data.image_folder import ImageFolder, ImageFolderOptions
from bench.features.base import FeatureSpec
from bench.infra.cache import Cache
from bench.infra.store import GeneratedFeaturesKey, GeneratedImagesKey, Store
from bench.metrics.base import Context
from bench.models.reference import ReferenceGenerator, ReferenceOptions

IMAGES, FEATURES = GeneratedImagesKey.kind, GeneratedFeaturesKey.kind
MAPS = Path("/proc/self/maps")


def mapped_file(t: torch.Tensor) -> str | None:
    """The file whose memory map holds the tensor's data (Linux's /proc/self/maps), or None
    for anonymous (private heap) memory."""
    addr = t.data_ptr()
    for line in MAPS.read_text().splitlines():
        parts = line.split(maxsplit=5)
        lo, hi = (int(v, 16) for v in parts[0].split("-"))
        if lo <= addr < hi:
            return parts[5] if len(parts) == 6 and parts[5].startswith("/") else None
    return None


needs_maps = pytest.mark.skipif(not MAPS.exists(), reason="needs /proc/self/maps (Linux)")


# ---------------------------------------------------------------- the training loop
@pytest.mark.parametrize("name", ["small_cnn", "airbench"])
def test_beyond_the_device_budget_batches_move_and_the_model_is_the_same(name, monkeypatch,
                                                                         one_thread):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (200, 3, 16, 16), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (200,), generator=g)
    cfg = ClassifierConfig(name=name, epochs=2, batch_size=64,
                           augment={"crop": 1, "flip": "alternating"})
    cpu = torch.device("cpu")
    whole = train_classifier(cfg, x, y, 3, cpu, 0, progress=False).model.state_dict()
    monkeypatch.setattr(train_mod, "DEVICE_DATA_BUDGET", 0)  # every set is "too large"
    data = TrainingData(x, y, cpu)
    assert not data.on_device and data.x is x  # left where it was: no copy of the set
    batches = list(data.batches(torch.randperm(200, generator=g), 64))
    assert [len(b) for _, b in batches] == [64, 64, 64, 8]
    streamed = train_classifier(cfg, x, y, 3, cpu, 0, progress=False).model.state_dict()
    assert all(torch.equal(whole[k], streamed[k]) for k in whole)  # same batches, same model


# ---------------------------------------------------------------- image folders
def _folder(root: Path, counts: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.png")


@needs_maps
def test_image_folder_decodes_once_into_a_memory_mapped_cache_file(tmp_path, monkeypatch):
    _folder(tmp_path / "imgs", {"a": 8, "b": 6})
    reads = []
    read = ImageFolder._read
    monkeypatch.setattr(ImageFolder, "_read", lambda self, f, size: reads.append(f) or read(self, f, size))
    cache = Cache(tmp_path / "cache")

    def load(**kw):
        src = ImageFolder(ImageFolderOptions(root=tmp_path / "imgs", val_fraction=0.25, **kw))
        return src.load(cache)

    first = load()
    assert len(reads) == 14 and cache.misses["image_folder"] == 1
    entries = list((tmp_path / "cache" / "image_folder").glob("*.npy"))
    assert len(entries) == 1 and entries[0].with_suffix(".json").is_file()
    assert not list((tmp_path / "cache" / "image_folder").glob("*decoding*"))  # temporaries gone
    again = load()
    assert len(reads) == 14 and cache.hits["image_folder"] == 1  # nothing decoded again
    assert torch.equal(again.train_x, first.train_x) and torch.equal(again.val_y, first.val_y)
    assert again.digest == first.digest
    assert mapped_file(again.train_x) == str(entries[0]) == mapped_file(again.val_x)
    # a rewritten image (new size / mtime) is a new entry, decoded again
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "imgs" / "a" / "0.png",
                                                          compress_level=0)
    changed = load()
    assert len(reads) == 28 and changed.digest != first.digest
    load(channels=1)  # other options, another entry
    assert len(list((tmp_path / "cache" / "image_folder").glob("*.npy"))) == 3


# ---------------------------------------------------------------- the store
def _ctx(tmp_path: Path, store: Store) -> Context:
    return Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "art",
                   progress=False, store=store)


@needs_maps
def test_persisted_streams_and_features_are_memory_mapped(tmp_path, one_thread):
    digits = Digits().load()
    store = Store(Cache(tmp_path / "cache"))
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    store.identify(gen, "fp")
    ctx = _ctx(tmp_path, store)
    x, _ = ctx.generated(gen, digits, 1500)  # two chunks, written as sampled
    path = mapped_file(x)
    assert path is not None and path.endswith(".npy") and f"/{IMAGES}/" in path
    longer, _ = ctx.generated(gen, digits, 2500)  # extended: a new file, the old rows copied
    assert torch.equal(longer[:1500], x) and mapped_file(longer) is not None
    feats = ctx.fake_features(gen, digits, FeatureSpec(name="classifier", classifier={"epochs": 1}),
                              500)
    assert (mapped_file(feats) or "").endswith(".pt")
    # in memory only without persistence
    off = Store(Cache(tmp_path / "off"), persist=False)
    off.identify(gen, "fp")
    assert mapped_file(_ctx(tmp_path / "off", off).generated(gen, digits, 10)[0]) is None


def test_without_reuse_the_store_shares_nothing(tmp_path, one_thread):
    digits = Digits().load()
    store = Store(Cache(tmp_path / "cache"), reuse=False)
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="noise"))
    store.identify(gen, "fp")
    ctx = _ctx(tmp_path, store)
    a, _ = ctx.generated(gen, digits, 100)
    b, _ = ctx.generated(gen, digits, 100)
    assert torch.equal(a, b) and store.computed[IMAGES] == 2 and not store.reused[IMAGES]
    spec = FeatureSpec(name="classifier", classifier={"epochs": 1})
    ctx.fake_features(gen, digits, spec, 100)
    ctx.fake_features(gen, digits, spec, 100)
    # each request extracts again, and samples again for it
    assert store.computed[FEATURES] == 2 and store.computed[IMAGES] == 4
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing persisted either


# ---------------------------------------------------------------- the whole protocol's peak RSS
N_TRAIN, N_VAL, BATCH = 5000, 1000, 1024
# small_cnn rather than the 32-px default (airbench): the bound is about what grows with N,
# which the classifier does not change, and it runs in a third of the time (CI's budget).
CLF = f"{{name: small_cnn, epochs: 1, batch_size: {BATCH}}}"
FEAT = f"{{name: classifier, classifier: {CLF}}}"
SUITE = f"""\
name: rss
device: cpu
datasets:
  synth: {{source: npz, path: data.npz}}
models:
  fake: {{source: samples, path: fake.npz}}
metrics:
  gan_train: {{classifier: {CLF}}}
  gan_test: {{classifier: {CLF}}}
  fid: {{features: {FEAT}, bootstrap: 0}}
  kid: {{features: {FEAT}}}
  precision_recall: {{features: {FEAT}}}
  density_coverage: {{features: {FEAT}}}
"""
CHILD = textwrap.dedent(f"""\
    import json, sys
    from pathlib import Path
    import mlflow, torch  # noqa: F401
    import bench.features, bench.metrics, bench.models, bench.run.runner, bench.config.suite  # noqa: F401
    def peak():  # this process image's peak RSS: getrusage's ru_maxrss would be at least the
        # parent's RSS when it forked (Linux keeps it across exec: pytest's gigabyte)
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) * 1024
    imported = peak()  # the baseline: the peak so far is the imports'
    mode = sys.argv[1]
    if mode == "step":  # one classifier's training working set: 2 steps of {BATCH} images
        from bench.classifiers.train import ClassifierConfig, train_classifier
        x = torch.randint(0, 256, (2 * {BATCH}, 3, 32, 32), dtype=torch.uint8)
        y = torch.arange(2 * {BATCH}) % 10
        train_classifier(ClassifierConfig(name="small_cnn", epochs=1, batch_size={BATCH}), x, y,
                         10, torch.device("cpu"), 0, progress=False)
    elif mode == "run":
        from bench.run.runner import run_suite
        from bench.config.suite import load_suite
        report = run_suite(load_suite("suite.yaml"), tracking_uri="sqlite:///mlflow.db",
                           progress=False)
        assert report.ok, report.summary()
    print(json.dumps([imported, peak()]))
""")


def _images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n channels-last 32x32 RGB images, a grey level per class plus noise, and labels."""
    y = np.arange(n) % 10
    x = (y[:, None, None, None] * 25 + rng.integers(-40, 40, (n, 32, 32, 3))).clip(0, 255)
    return x.astype(np.uint8), y


def _peak_rss(mode: str, cwd: Path) -> tuple[int, int]:
    """The child's peak RSS after its imports, and at its end."""
    out = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=cwd, capture_output=True,
                         text=True, timeout=1200, env=child_env(BENCH_CACHE_DIR=str(cwd / "cache")))
    assert out.returncode == 0, out.stderr[-3000:]
    imported, end = json.loads(out.stdout.strip().splitlines()[-1])
    return int(imported), int(end)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_a_5k_protocol_stays_under_its_derived_peak_rss(tmp_path, sqlite_template):
    """Peak RSS of gan_train, gan_test, fid, kid, precision_recall and density_coverage (the
    `classifier` extractor on small_cnn, one epoch at batch 1,024) on 5,000 + 1,000 images of
    3x32x32 with a `samples` model, run in a child process, is at most

        B + W + 5 D + 512 MiB

    B: the interpreter with torch, MLflow and bench's plugins imported (measured: a child's
       peak once it has imported them); W: one classifier training step's working set at the
       batch of 1,024 (measured: that child's peak after it trains 2 steps on 2,048 random
       images, minus B):
       activations and gradients of a batch, a fixed cost whatever N;
    D: the dataset's uint8 bytes (train + val, 18.4 MB here), counted five times: the
       dataset, its channels-last to channels-first copy while the npz loads, the samples
       model's pool (the same size here), the generated stream (6,144 images, memory-mapped
       but resident pages count in RSS) and the float32 features with logits of the real
       train, real val and generated images (3 x 6,000 x 138 x 4 B, under one D);
    512 MiB: fixed-size blocks and slack: one nearest-neighbour distance block (at most
       256 MiB by construction, bench.metrics.functional._knn) and 256 MiB for allocator
       fragmentation, MLflow / SQLite and Python objects.

    Nothing else may grow with N: no float copy of a set, no N x N matrix, no list of
    decoded images. At 50,000 images the same terms give B + W + 5 x 184 MB + 512 MiB."""
    rng = np.random.default_rng(0)
    tx, ty = _images(rng, N_TRAIN)
    vx, vy = _images(rng, N_VAL)
    np.savez(tmp_path / "data.npz", train_images=tx, train_labels=ty, val_images=vx, val_labels=vy)
    fx, fy = _images(rng, N_TRAIN)
    np.savez(tmp_path / "fake.npz", images=fx, labels=fy)
    (tmp_path / "suite.yaml").write_text(SUITE)
    d = tx.nbytes + vx.nbytes
    base, stepped = _peak_rss("step", tmp_path)  # one child: its imports, then the 2 steps
    work = stepped - base
    bound = base + work + 5 * d + (512 << 20)
    if sqlite_template is not None:  # the child's store from the migrated template (not the
        shutil.copyfile(sqlite_template, tmp_path / "mlflow.db")  # point; 5-8 s of CPU)
    peak = _peak_rss("run", tmp_path)[1]
    mib = 1 << 20
    print(f"peak RSS {peak / mib:.0f} MiB <= bound {bound / mib:.0f} MiB = baseline "
          f"{base / mib:.0f} + training step {work / mib:.0f} + 5 x data {d / mib:.1f} + 512")
    assert peak <= bound, (f"peak RSS {peak / mib:.0f} MiB over the bound {bound / mib:.0f} MiB "
                           f"(baseline {base / mib:.0f}, step {work / mib:.0f}, data {d / mib:.1f})")
