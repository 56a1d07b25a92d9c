"""The store: work shared between the cells of a process, under typed keys.

One sampling pass and one feature pass per model serve every metric. Each model has one
stream of generated images per (generator, dataset, seed): labels in a fixed order whose
every prefix has the real training split's class balance (per-class counts within +-1 of
n x the class share, exactly the training counts at the training size), sampled in chunks
of `CHUNK` images, each chunk one generator call with a seed derived from (seed, chunk
start). A metric asking for n images gets the first n of the stream; a longer request
samples only the missing chunks. Features of generated images are keyed by (images key,
extractor tag), extracted chunk by chunk in one pass with the logits when the extractor
has them (the Inception Score shares the FID's pass), and a request is a prefix of them.

Every key is a frozen dataclass of one kind (`Key.kind`); `Store.get(key, compute)`
returns the value held under the key or computes and keeps it, counting per kind how
often values were computed, loaded from disk or reused from memory (`Store.report()`).

Persistence: generated images (uint8 `.npy`) and their features (`.pt`) are written next
to the real-feature cache (bench/infra/cache.py, under its file locks, so a second worker waits
and reads instead of sampling again). Opt out with `BENCH_PERSIST_SAMPLES=0` or
`Store(persist=False)`. Generators without a fingerprint (a Context built by hand around a
generator object) are kept in memory only.

Memory: a persisted stream is written to its file chunk by chunk as it is sampled and then
used memory-mapped (so are persisted features, read back after writing): the store holds
no private copy of the images, their pages are the kernel's page cache, read on demand
and dropped under memory pressure. Unpersisted streams are one preallocated uint8 tensor.
Consumers read them in chunks (feature extraction: `CHUNK` images at a time; classifier
training: `bench.classifiers.train.TrainingData`).

`Store(reuse=False)` turns the sharing off (every request samples and extracts anew,
nothing is kept or persisted; real-side work falls back to the disk cache, as before the
store): what `benchmarks/suite_cost.py` measures the store against.

Real-side work (real features, the real-trained classifier, its val evaluation, Fréchet
reference statistics, nearest-neighbour training features, the protocol's `real_work`)
goes through the same store; its on-disk cache entries and keys are those of bench/infra/cache.py.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch

from bench.core.errors import BenchError
from bench.core.progress import bar
from bench.core.version import __version__
from bench.infra import output_checks
from bench.infra.cache import Cache, atomic_write, stable_hash
from bench.record.flags import Flag

CHUNK = 1024  # generated images per generator call (bounds a call's memory)
ORDER = "edf-1"  # the label order's scheme: a new scheme never reuses old samples
FORMAT = "1"  # of the persisted files
PERSIST_ENV = "BENCH_PERSIST_SAMPLES"

V = TypeVar("V")


# ---------------------------------------------------------------- keys
@dataclass(frozen=True)
class Key(Generic[V]):
    """A store key; `kind` names what it holds (counters, report, disk folder)."""

    kind: ClassVar[str] = "item"


@dataclass(frozen=True)
class GeneratedImagesKey(Key["GeneratedImages"]):
    """A model's one stream of generated images: the generator's fingerprint (its spec's
    resolved options, its build seed and the dataset digest, never the model's name), the
    dataset digest (its class balance orders the labels) and the sampling seed."""

    kind: ClassVar[str] = "generated_images"
    generator: str
    dataset: str
    seed: int
    chunk: int = CHUNK
    order: str = ORDER


@dataclass(frozen=True)
class GeneratedFeaturesKey(Key["GeneratedFeatures"]):
    """Features (and logits where the extractor has them) of a stream's images."""

    kind: ClassVar[str] = "generated_features"
    images: GeneratedImagesKey
    extractor: str  # FeatureExtractor.tag()


@dataclass(frozen=True)
class ClassImagesKey(Key["GeneratedImages"]):
    """Images of given per-class counts sampled apart from the stream: only when the stream
    prefix holding them would be far longer than the request (a class rare in the training
    split asked for in numbers, e.g. topping up a minority class)."""

    kind: ClassVar[str] = "generated_by_class"
    images: GeneratedImagesKey
    counts: tuple[int, ...]


@dataclass(frozen=True)
class SampleLabelsKey(Key[torch.Tensor]):
    """The label order of a stream (a function of the training labels and the seed)."""

    kind: ClassVar[str] = "sample_labels"
    dataset: str
    seed: int
    order: str = ORDER


@dataclass(frozen=True)
class RealFeaturesKey(Key[Any]):
    """Features (or (features, logits)) of a real split; on disk in the cache's
    `real_features` entries, whose keys are unchanged."""

    kind: ClassVar[str] = "real_features"
    dataset: str
    split: str
    extractor: str
    logits: bool


# The keys of values a plugin defines (the real classifier, its validation evaluation, the
# Frechet reference) are declared beside their users (bench.classifiers.real,
# bench.metrics.base, bench.metrics._distribution): this module imports no plugin.


@dataclass(frozen=True)
class NNTrainFeaturesKey(Key[tuple[torch.Tensor, torch.Tensor]]):
    """Centred training features of the real classifier and their mean (nearest neighbours)."""

    kind: ClassVar[str] = "nn_train_features"
    dataset: str
    classifier: str
    seed: int


@dataclass(frozen=True)
class RealWorkKey(Key[Any]):
    """A protocol metric's real-only result (bench.metrics._protocol.real_work), by its
    cache kind and entry name."""

    kind: ClassVar[str] = "real_work"
    what: str
    entry: str


@dataclass(frozen=True)
class FeatureNetworkKey(Key[Any]):
    """A loaded feature network (Inception, timm), by its identity string."""

    kind: ClassVar[str] = "feature_network"
    name: str


class Extractor(Protocol):
    """What `Store.generated_features` needs of a feature extractor
    (bench.features.base.FeatureExtractor)."""

    def extract_all(self, x: torch.Tensor, device: torch.device, batch_size: int | None = None,
                    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...


# ---------------------------------------------------------------- values
@dataclass
class GeneratedImages:
    # uint8 (N, C, H, W) on the CPU, N a multiple of the chunk; memory-mapped from its .npy
    # when persisted (copy-on-write: writing to it never changes the file)
    images: torch.Tensor
    labels: torch.Tensor  # int64 (N,): the labels the images were generated for
    # output checks of the stream (bench.infra.output_checks); None: not known yet
    flags: list[Flag] | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class GeneratedFeatures:
    features: torch.Tensor  # float (N, D)
    logits: torch.Tensor | None  # float (N, K) where the extractor has class logits

    def __len__(self) -> int:
        return int(self.features.shape[0])


# ---------------------------------------------------------------- the label order
def balanced_stream(train_y: torch.Tensor, num_classes: int, n: int, seed: int) -> torch.Tensor:
    """n labels in an order whose every prefix has the class shares of `train_y`: per-class
    counts of the first m labels lie within +-1 of m x share (exactly the training counts
    at m = len(train_y)), and a shorter stream is a prefix of a longer one.

    Earliest deadline first: the j-th label of class c is due by j / share_c; each position
    takes, among the classes not ahead of their share by a whole image, the one due first
    (ties, as between equally frequent classes, broken at random by the seed).
    """
    counts = np.bincount(train_y.cpu().numpy(), minlength=num_classes).astype(float)
    share = counts / counts.sum()
    rng = np.random.default_rng(seed % 2**63)
    have = np.zeros(num_classes)
    out = np.empty(n, dtype=np.int64)
    present = share > 0
    for t in range(1, n + 1):
        ok = np.flatnonzero(present & (have + 1 - t * share < 1 - 1e-9))
        due = (have[ok] + 1) / share[ok]
        first = ok[due <= due.min() * (1 + 1e-12)]
        c = first[rng.integers(len(first))] if len(first) > 1 else first[0]
        out[t - 1] = c
        have[c] += 1
    return torch.from_numpy(out)


def generator_fingerprint(model: dict[str, Any], generator_seed: int, dataset_digest: str) -> str:
    """Identity of a built generator: its spec's resolved options (plugin, options, file
    hashes), the seed it was built (trained) with and the dataset: two model names with the
    same options share their samples; the name is not part of it."""
    return stable_hash({"model": model, "generator_seed": generator_seed,
                        "dataset": dataset_digest}, 32)


def sharing_tags(before: dict[str, Counter[str]], after: dict[str, Counter[str]]) -> dict[str, str]:
    """Run tags of a cell from the store's counters around it: `samples` and `fake_features`
    = computed (this cell sampled / extracted) or reused (from memory or disk); absent when
    the cell used neither (a metric with its own sampling)."""
    def used(kind: str) -> bool:
        return any(after[c][kind] > before[c][kind] for c in after)

    def computed(kind: str) -> bool:
        return after["computed"][kind] > before["computed"][kind]

    images, apart, feats = GeneratedImagesKey.kind, ClassImagesKey.kind, GeneratedFeaturesKey.kind
    tags = {}
    if used(images) or used(apart) or used(feats):  # features read back stand for their samples
        tags["samples"] = "computed" if computed(images) or computed(apart) else "reused"
    if used(feats):
        tags["fake_features"] = "computed" if computed(feats) else "reused"
    return tags


def _whole(n: int, chunk: int) -> int:
    return -(-max(n, 1) // chunk) * chunk


# ---------------------------------------------------------------- the store
class Store:
    """Values under typed keys, with per-kind counters of computed, loaded and reused.

    `max_streams` bounds how many models' generated images (and their features) stay in
    memory: the executors run one model's cells together, so the oldest stream is dropped
    when another model starts (persisted streams are read back from disk if needed again).
    """

    def __init__(self, cache: Cache | None = None, persist: bool | None = None,
                 max_streams: int = 2, reuse: bool = True):
        self.cache = cache
        if persist is None:
            from bench.core.settings import settings

            persist = settings().persist_samples
        self.persist = persist and reuse
        self.max_streams = max_streams
        self.reuse = reuse  # False: nothing shared (the benchmark's "before the store")
        self.computed: Counter[str] = Counter()
        self.loaded: Counter[str] = Counter()
        self.reused: Counter[str] = Counter()
        self._items: dict[Key[Any], Any] = {}
        self._streams: OrderedDict[GeneratedImagesKey, None] = OrderedDict()
        self._identity: dict[int, tuple[Any, str, bool]] = {}

    # ------------------------------------------------------------ typed memo
    def get(self, key: Key[V], compute: Callable[[], V]) -> V:
        """The value under `key`, computed once (counted `computed`, later `reused`)."""
        if key in self._items:
            self.reused[key.kind] += 1
            return self._items[key]
        value = compute()
        self.computed[key.kind] += 1
        if self.reuse:
            self._items[key] = value
        return value

    def entry(self, key: Key[V], cache: Cache, path: Path, kind: str, load: Callable[[Path], V],
              compute: Callable[[], V], save: Callable[[Path, V], None]) -> V:
        """`get` backed by an entry of the disk cache (`Cache.entry`: the file, else computed
        and saved, under its lock). A reuse from memory counts as a cache hit too, so the
        cache's report reads as it did before the store."""
        if key in self._items:
            cache.hit(kind)
        return self.get(key, lambda: cache.entry(path, kind, load, compute, save))

    def peek(self, key: Key[V]) -> V | None:
        """The value under `key` if held, without counting."""
        return self._items.get(key)

    def __contains__(self, key: Key[Any]) -> bool:
        return key in self._items

    def counts(self) -> dict[str, Counter[str]]:
        """A snapshot of the counters ({"computed"|"loaded"|"reused": {kind: n}})."""
        return {"computed": Counter(self.computed), "loaded": Counter(self.loaded),
                "reused": Counter(self.reused)}

    def report(self) -> str:
        kinds = sorted(set(self.computed) | set(self.loaded) | set(self.reused))
        if not kinds:
            return "store: unused"
        parts = []
        for k in kinds:
            loaded = f" / {self.loaded[k]} loaded" if self.loaded[k] else ""
            parts.append(f"{k} {self.computed[k]} computed{loaded} / {self.reused[k]} reused")
        return "store: " + ", ".join(parts)

    # ------------------------------------------------------------ generator identity
    def identify(self, generator: Any, fingerprint: str, persist: bool = True) -> None:
        """Name a generator object by its fingerprint (the worker does, from the model spec);
        `persist=False`: its samples stay in memory (a generator object of one call)."""
        self._identity[id(generator)] = (generator, fingerprint, persist)

    def identity(self, generator: Any) -> tuple[str, bool]:
        """(identity, persistable): the fingerprint given to `identify`, else one for this
        object alone, kept in memory only (the object is held so its id is never reused)."""
        if id(generator) not in self._identity:
            self._identity[id(generator)] = (generator, f"object-{id(generator):x}", False)
        _, ident, persistable = self._identity[id(generator)]
        return ident, persistable

    # ------------------------------------------------------------ generated images
    def labels(self, dataset: Any, seed: int, n: int) -> torch.Tensor:
        """The first n labels of the dataset's stream order for `seed`."""
        key = SampleLabelsKey(dataset.digest, seed)
        have = self._items.get(key)
        if have is None or len(have) < n:  # the order is prefix-stable: recompute it longer
            have = balanced_stream(dataset.train_y, dataset.num_classes, n, seed)
            self._items[key] = have
        return have[:n]

    def prefix_for(self, dataset: Any, seed: int, counts: np.ndarray, limit: int) -> int | None:
        """The shortest prefix of the stream holding `counts[c]` images of every class c,
        or None when it is longer than `limit` (or a requested class has no training image:
        the stream never has it). Only labels up to `limit` are computed."""
        counts = np.asarray(counts, dtype=np.int64)
        train = np.bincount(dataset.train_y.cpu().numpy(), minlength=len(counts))[: len(counts)]
        want = np.flatnonzero(counts > 0)
        if len(want) == 0:
            return 0
        if (train[want] == 0).any():
            return None
        share = train / train.sum()
        # every prefix of m labels has at least m x share - 1 of each class
        m = min(limit, int(np.ceil(((counts[want] + 1) / share[want]).max())))
        y = self.labels(dataset, seed, m).numpy()
        at = [np.flatnonzero(y == c) for c in want]
        if any(len(a) < counts[c] for a, c in zip(at, want, strict=True)):
            return None
        return max(int(a[counts[c] - 1]) for a, c in zip(at, want, strict=True)) + 1

    def generated_images(self, key: GeneratedImagesKey, sample: Callable[[torch.Tensor, int], torch.Tensor],
                         dataset: Any, n: int, persist: bool = True,
                         progress: bool = False) -> GeneratedImages:
        """At least the first n images of the stream (whole chunks), sampling only what no
        earlier request did (in memory or on disk). `sample(labels, start)` gives the images
        of `labels[start:]`, one chunk of the stream whose labels so far are `labels`
        (bench.models.base.sample_stream with the key's seed). The stream's output flags go
        to the generator object(s) it is drawn for (output_checks.output_flags)."""
        out = self._generated_images(key, sample, dataset, n, persist, progress)
        output_checks.note(self._drawing(key), out.flags)
        return out

    def _generated_images(self, key: GeneratedImagesKey, sample: Callable[[torch.Tensor, int], torch.Tensor],
                          dataset: Any, n: int, persist: bool, progress: bool) -> GeneratedImages:
        need = _whole(n, key.chunk)
        cur = self._items.get(key)
        if cur is not None and len(cur) >= need:
            self.reused[key.kind] += 1
            self._touch(key)
            return cur
        path = self._path(key, ".npy") if persist else None
        with self._locked(path):
            if path is not None and path.exists() and (cur is None or _npy_rows(path) > len(cur)):
                disk = self._load_images(path, key, dataset)
                if disk is not None:
                    cur = disk
                    if len(disk) >= need:
                        if disk.flags is None:  # cached without its flags: the uint8 checks again
                            disk.flags = output_checks.check_images(disk.images, dataset, key.chunk)
                        self.loaded[key.kind] += 1
                        self._keep_stream(key, disk)
                        return disk
            labels = self.labels(dataset, key.seed, need)
            chunks = self._sampled(key, sample, dataset, labels, len(cur) if cur is not None else 0,
                                   progress)
            checks = output_checks.StreamChecks(dataset)
            rows = checks.watch(_rows(cur, key.chunk, chunks))  # every row, old and new
            if path is None:  # in memory: one preallocated tensor, never a list and a cat
                images = torch.empty((need, *dataset.image_shape), dtype=torch.uint8)
                for start, x in rows:
                    images[start : start + len(x)] = x
            else:  # written to the file as sampled, then memory-mapped: no copy in memory
                shape = (need, *dataset.image_shape)
                atomic_write(path, lambda tmp: _write_npy(tmp, shape, rows))
                images = torch.from_numpy(np.load(path, mmap_mode="c", allow_pickle=False))
            flags = checks.finish(self._drawing(key), cur.flags if cur is not None else None)
            if path is not None:
                output_checks.write_flags(path, flags)
            out = GeneratedImages(images, labels, flags)
            self.computed[key.kind] += 1
            self._keep_stream(key, out)
            return out

    def images_apart(self, key: ClassImagesKey, sample: Callable[[torch.Tensor, int], torch.Tensor],
                     dataset: Any, labels: torch.Tensor, progress: bool = False) -> GeneratedImages:
        """Images for `labels` sampled apart from the stream (see `ClassImagesKey`), chunk by
        chunk and checked like the stream's, once per key."""
        def compute() -> GeneratedImages:
            images = torch.empty((len(labels), *dataset.image_shape), dtype=torch.uint8)
            for start, x in self._sampled(key.images, sample, dataset, labels, 0, progress):
                images[start : start + len(x)] = x
            return GeneratedImages(images, labels)

        return self.get(key, compute)

    def _drawing(self, key: GeneratedImagesKey) -> list[Any]:
        """The generator objects a stream is drawn for (one, or several names with equal options)."""
        return [g for g, ident, _ in self._identity.values() if ident == key.generator]

    def _sampled(self, key: GeneratedImagesKey, sample: Callable[[torch.Tensor, int], torch.Tensor],
                 dataset: Any, labels: torch.Tensor, have: int, progress: bool
                 ) -> Iterator[tuple[int, torch.Tensor]]:
        """(start, uint8 images) of each chunk of `labels` from row `have` on, sampled one
        generator call at a time and checked (a stream's labels are whole chunks; a set
        sampled apart may end with a shorter one)."""
        for start in bar(range(have, len(labels), key.chunk), "generate", progress, unit="chunk"):
            want = (min(key.chunk, len(labels) - start), *dataset.image_shape)
            # a numpy array works; a tuple or another number of images than asked: one line
            x = output_checks.generator_output(sample(labels[: start + key.chunk], start), want[0],
                                               labels[start : start + want[0]],
                                               "the generator's sample(n, labels, seed)")
            if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or tuple(x.shape) != want:
                raise BenchError(f"the generator returned {getattr(x, 'dtype', type(x))} "
                                 f"{tuple(getattr(x, 'shape', ()))} for a chunk of {want[0]} "
                                 f"images; expected uint8 {want}")
            yield start, x.cpu()

    def _load_images(self, path: Path, key: GeneratedImagesKey, dataset: Any) -> GeneratedImages | None:
        try:
            arr = np.load(path, mmap_mode="c", allow_pickle=False)
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed, never trusted
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] % key.chunk or \
                tuple(arr.shape[1:]) != tuple(dataset.image_shape):
            return None
        images = torch.from_numpy(arr)
        return GeneratedImages(images, self.labels(dataset, key.seed, len(images)),
                               output_checks.read_flags(path))

    # ------------------------------------------------------------ generated features
    def generated_features(self, key: GeneratedFeaturesKey, n: int,
                           images: Callable[[int], GeneratedImages], extractor: Extractor,
                           device: torch.device, batch_size: int | None, persist: bool = True,
                           progress: bool = False) -> GeneratedFeatures:
        """Features of at least the first n images of the stream, with the logits where the
        extractor gives them; `images(n)` is only called for rows that are neither in memory
        nor on disk. Exactly the rows asked for are extracted (a longer request extends them),
        not whole chunks: the images come in chunks of 1,024, but a pool of 200 images would
        otherwise pay the feature network (most of a score's time) on 1,024 rows."""
        chunk = key.images.chunk
        need = max(n, 1)
        if not self.reuse:
            persist = False
        cur = self._items.get(key)
        if cur is not None and len(cur) >= need:
            self.reused[key.kind] += 1
            self._touch(key.images)
            return cur
        path = self._path(key, ".pt") if persist else None
        with self._locked(path):
            if path is not None and path.exists():
                disk = _load_features(path)
                if disk is not None and (cur is None or len(disk) > len(cur)):
                    cur = disk
                    if len(disk) >= need:
                        self.loaded[key.kind] += 1
                        self._keep_features(key, disk)
                        return disk
            have = len(cur) if cur is not None else 0
            x = images(need).images
            feats = [cur.features] if cur is not None else []
            logits: list[torch.Tensor | None] = [cur.logits] if cur is not None else []
            for start in bar(range(have, need, chunk), "generated features", progress, unit="chunk"):
                f, lg = extractor.extract_all(x[start : min(start + chunk, need)], device, batch_size)
                feats.append(f)
                logits.append(lg)
            all_logits = None if any(lg is None for lg in logits) else torch.cat(logits)  # type: ignore[arg-type]
            out = GeneratedFeatures(torch.cat(feats), all_logits)
            del feats, logits
            self.computed[key.kind] += 1
            if path is not None:
                atomic_write(path, lambda tmp: torch.save({"format": FORMAT, "features": out.features,
                                                      "logits": out.logits}, tmp))
                mapped = _load_features(path)  # memory-mapped, like the images
                out = mapped if mapped is not None else out
            self._keep_features(key, out)
            return out

    # ------------------------------------------------------------ memory and disk
    def _path(self, key: Key[Any], suffix: str) -> Path | None:
        """Where a generated entry persists (None: memory only), beside the real features."""
        if self.cache is None or not self.persist:
            return None
        return self.cache.path(key.kind, {**_plain(key), "format": FORMAT,
                                          "bench": __version__}, suffix)

    def _locked(self, path: Path | None) -> AbstractContextManager[None]:
        """The cache's file lock on a persisted entry: a second worker waits, then reads."""
        return self.cache.lock(path) if path is not None and self.cache is not None else nullcontext()

    def _touch(self, key: GeneratedImagesKey) -> None:
        if key in self._streams:
            self._streams.move_to_end(key)

    def _keep_stream(self, key: GeneratedImagesKey, value: GeneratedImages) -> None:
        if self.reuse:
            self._items[key] = value
            self._keep(key)

    def _keep_features(self, key: GeneratedFeaturesKey, value: GeneratedFeatures) -> None:
        if self.reuse:
            self._items[key] = value
            self._keep(key.images)

    def _keep(self, stream: GeneratedImagesKey) -> None:
        """Mark a stream most recently used; drop the least recent beyond `max_streams`
        (its images and every feature set of them)."""
        self._streams[stream] = None
        self._streams.move_to_end(stream)
        while len(self._streams) > self.max_streams:
            old, _ = self._streams.popitem(last=False)
            for k in [k for k in self._items
                      if k == old or (isinstance(k, GeneratedFeaturesKey) and k.images == old)]:
                del self._items[k]


def _plain(key: Key[Any]) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(key), default=str))


def _rows(cur: GeneratedImages | None, chunk: int, new: Iterator[tuple[int, torch.Tensor]]
          ) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, images) of a whole stream in order: the rows already held, a chunk at a time
    (read from their file when memory-mapped), then the newly sampled chunks."""
    if cur is not None:
        for start in range(0, len(cur), chunk):
            yield start, cur.images[start : start + chunk]
    yield from new


def _write_npy(path: str, shape: tuple[int, ...], rows: Iterator[tuple[int, torch.Tensor]]) -> None:
    """A uint8 .npy of `shape` written row block by row block, in order: plain file writes,
    so a full disk is an OSError here (writing through a fresh memory map would be a SIGBUS)."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                "fortran_order": False, "shape": tuple(int(v) for v in shape)})
        done = 0
        for start, x in rows:
            if start != done:
                raise AssertionError(f"stream rows out of order: {start} after {done}")
            f.write(np.ascontiguousarray(x.numpy()).data)
            done += int(x.shape[0])
        if done != shape[0]:
            raise AssertionError(f"stream file: {done} rows written, {shape[0]} expected")


def _npy_rows(path: Path) -> int:
    try:
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    except (OSError, ValueError, IndexError):
        return 0


def _load_features(path: Path) -> GeneratedFeatures | None:
    try:
        d = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - a damaged entry is recomputed, never trusted
        return None
    f = d.get("features") if isinstance(d, dict) else None
    if d.get("format") != FORMAT or not isinstance(f, torch.Tensor) or f.ndim != 2:
        return None
    lg = d.get("logits")
    return GeneratedFeatures(f, lg if isinstance(lg, torch.Tensor) else None)


