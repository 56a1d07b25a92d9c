"""The Metric contract and the Context that carries shared, cached work between cells."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from bench.classifiers.real import real_classifier
from bench.classifiers.train import ClassifierConfig, Evaluation, TrainedClassifier, evaluate
from bench.core.errors import BenchError
from bench.core.registry import O, Plugin
from bench.data.base import Dataset
from bench.features.base import FeatureExtractor, FeatureSpec
from bench.infra.cache import Cache
from bench.infra.store import (
    ClassImagesKey,
    GeneratedFeaturesKey,
    GeneratedImages,
    GeneratedImagesKey,
    Key,
    RealFeaturesKey,
    Store,
)
from bench.metrics.sampling import first_of_each_class, labels_from_counts
from bench.models.base import BuildContext, Generator, ModelSource, sample_stream
from bench.record.flags import Flag
from bench.record.values import Value, lookup


@dataclass(frozen=True)
class RealValEvaluationKey(Key[Evaluation]):
    """The real-trained classifier on real validation images (in the store, memory only)."""

    kind: ClassVar[str] = "real_val_evaluation"
    dataset: str
    classifier: str
    seed: int


# how much longer than a by-class request the stream prefix serving it may be (see
# `Context.generated_by_class`); beyond it, the images are sampled apart
STREAM_REACH = 2


@dataclass
class Context:
    """Everything a metric may use besides the generator and the dataset.

    Work shared between cells goes through `store` (bench.infra.store.Store, the worker's, shared
    by every cell of a process): the model's one stream of generated images and their
    features, the real-trained classifier (also on disk per dataset digest, classifier
    config and seed, so K models in a suite pay for one real training), real features.
    A Context built without a store gets its own, bound to `cache`.
    """

    device: torch.device
    seed: int
    cache: Cache
    artifact_dir: Path
    progress: bool = True
    store: Store = field(default_factory=Store)
    # extra run tags a metric sets (e.g. the feature extractor and its resize method)
    tags: dict[str, str] = field(default_factory=dict)
    # the cell's model source and the seed its generator was built with (set by the worker;
    # None outside a suite run): for metrics that train the source themselves on data they
    # choose (`train_generator`)
    source: ModelSource | None = None
    generator_seed: int | None = None
    # evidence that the model is broken, copies or ignores its labels (bench.record.flags): part of
    # the cell's record, shown where the model's row is; gates keep it below passing models
    flags: list[Flag] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.store.cache is None:
            self.store.cache = self.cache

    def flag(self, kind: str, reason: str, gate: bool = True, value: str = "") -> None:
        """Record a flag on this cell (see bench.record.flags)."""
        self.flags.append(Flag(kind, reason, gate, value))

    def can_train_generator(self) -> bool:
        return self.source is not None and self.source.trainable

    def train_generator(self, data: Dataset) -> Generator:
        """A generator of the cell's (trainable) source trained on `data`, usually a view of
        the dataset (`Dataset.restrict_train`): trained once per data digest, options and
        generator seed, then loaded from the disk cache (ModelSource.build_on). Not logged as
        an MLflow model: it exists for the metric that asked for it."""
        if self.source is None or not self.source.trainable:
            what = "no model source" if self.source is None else type(self.source).__name__
            raise BenchError(f"this metric trains the model on data it chooses, and the cell has "
                             f"{what}: only trainable sources (cgan, baseline) can be trained.")
        seed = self.seed if self.generator_seed is None else self.generator_seed
        return self.source.build_on(data, BuildContext(self.device, seed, self.cache, self.progress))

    def real_classifier(self, dataset: Dataset, cfg: ClassifierConfig) -> TrainedClassifier:
        return real_classifier(dataset, cfg, self.device, self.seed, self.cache, self.store,
                               self.progress)

    def real_val_evaluation(self, dataset: Dataset, cfg: ClassifierConfig) -> Evaluation:
        """The real-trained classifier on real validation images: the reference beside every
        classifier-based number, evaluated once per (dataset, *resolved* config, seed): keyed
        as the classifier itself is (bench.classifiers.real), so two configs that train the
        same recipe share it and a changed recipe default is evaluated anew, never stale."""
        rcfg = cfg.resolve(dataset.image_shape)
        key = RealValEvaluationKey(dataset.digest, rcfg.model_dump_json(), self.seed)
        return self.store.get(key, lambda: evaluate(self.real_classifier(dataset, cfg),
                                                    dataset.val_x, dataset.val_y, self.device))

    def real_val_accuracy(self, dataset: Dataset, cfg: ClassifierConfig) -> float:
        return self.real_val_evaluation(dataset, cfg).accuracy

    # ------------------------------------------------------------ features
    def extractor(self, spec: FeatureSpec, dataset: Dataset) -> FeatureExtractor:
        ex = spec.build()
        ex.prepare(dataset, self)
        self.tags["features"] = ex.tag()
        return ex

    def real_features(self, dataset: Dataset, spec: FeatureSpec, split: str = "train",
                      logits: bool = False) -> Any:
        """Features of a real split, cached on disk per (dataset digest, split, extractor tag):
        K models in a suite extract the real features once."""
        ex = self.extractor(spec, dataset)
        path = self.cache.path("real_features", {"dataset": dataset.digest, "split": split,
                                                 "extractor": ex.tag(), "logits": logits}, ".pt")
        def extract() -> Any:
            x = dataset.train_x if split == "train" else dataset.val_x
            return ex.extract(x, self.device, spec.batch_size, logits=logits,
                              progress=self.progress, desc=f"real {split} features")

        return self.store.entry(RealFeaturesKey(dataset.digest, split, ex.tag(), logits), self.cache,
                                path, "real_features",
                                lambda p: torch.load(p, map_location="cpu", weights_only=True),
                                extract, self.cache.save_torch)

    # ------------------------------------------------------------ generated images
    def stream(self, generator: Generator, dataset: Dataset) -> tuple[GeneratedImagesKey, bool]:
        """The key of the model's one stream of generated images for this cell's seed, and
        whether it may persist (only for generators the worker named by fingerprint)."""
        ident, persist = self.store.identity(generator)
        return GeneratedImagesKey(ident, dataset.digest, self.seed), persist

    def distinct(self, generator: Generator, dataset: Dataset, n: int) -> int:
        """How many of the first n images of the model's stream are distinct: n for a
        network; for a finite pool (`Generator.distinct_per_class`), the longest prefix in
        which no class asks for more images than the pool holds of it. A larger request is
        capped there, with a `small_pool` flag on the cell, so no value or interval counts
        one image twice (a pool of 539 served as 1,258 narrowed intervals by about 1.5x)."""
        per, total = generator.distinct_per_class, generator.distinct_images
        if total is None or n <= 0:
            return n
        if per is None or len(per) != dataset.num_classes:  # served whatever the labels
            m = min(n, total)
        else:
            lab = self.store.labels(dataset, self.seed, n).numpy()
            occurrence = pd.Series(lab).groupby(lab).cumcount().to_numpy()
            over = np.flatnonzero(occurrence >= np.asarray(per)[lab])
            m = int(over[0]) if len(over) else n
        if m < n:
            why = ""
            if per is not None and len(per) == dataset.num_classes and m < total:
                # the pool holds enough images in all, but not in the training split's class
                # balance: name the class that runs out first, or 897 vs 857 reads as a bug
                c = int(lab[m])
                name = dataset.class_names[c] if c < len(dataset.class_names) else str(c)
                why = (f"; its class counts differ from the training split's, and class "
                       f"{name!r} runs out first ({int(per[c]):,} images)")
            self.flag("small_pool", f"the model is a pool of {total:,} distinct images{why}; "
                      f"{n:,} were asked, so its values use the first {m:,}, which keep the "
                      "training split's class balance with no image counted twice", gate=False)
        return m

    def generated(self, generator: Generator, dataset: Dataset,
                  n: int | None = None, distinct: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n images of the model's stream (uint8, CPU) and the labels they were
        generated for (int64): every prefix has the training split's class balance (n
        None: the training size, whose counts are exactly the training split's). Sampled
        once per model and seed, shared by every metric; a longer request samples only the
        missing chunks. A finite pool gives only its distinct images (`distinct`: fewer than
        n where it holds fewer; `distinct=False` wraps around, for callers that count
        per-class images themselves)."""
        n = len(dataset.train_y) if n is None else n
        if distinct:
            n = self.distinct(generator, dataset, n)
        out = self._generated(generator, dataset, n)
        return out.images[:n], out.labels[:n]

    def generated_by_class(self, generator: Generator, dataset: Dataset,
                           counts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """`counts[c]` generated images of each class c and their labels, in stream order:
        the first images of each class in the model's stream, so a smaller request is
        nested in a larger one and shares the stream's one sampling pass with every other
        metric (the learning curve, augmentation, balancing, the sample grids).

        The stream's classes come in the training split's proportions, so a request far
        from them (many images of a rare class) would need a prefix much longer than the
        request: beyond max(`STREAM_REACH` x the request, the training + val size) the
        images are sampled apart, once per model, seed and counts (bench.infra.store.ClassImagesKey).
        """
        counts = np.asarray(counts, dtype=np.int64)
        total = int(counts.sum())
        if total == 0:  # nothing asked: no call a generator might not expect
            return (torch.empty((0, *dataset.image_shape), dtype=torch.uint8),
                    torch.empty(0, dtype=torch.int64))
        key, _ = self.stream(generator, dataset)
        reach = max(STREAM_REACH * total, len(dataset.train_y) + len(dataset.val_y))
        m = self.store.prefix_for(dataset, key.seed, counts, reach)
        if m is not None:
            x, y = self.generated(generator, dataset, m, distinct=False)
            idx = first_of_each_class(y, counts)
            return x[idx], y[idx]

        def sample(labels: torch.Tensor, start: int) -> torch.Tensor:  # a seed apart from the stream's
            return sample_stream(generator, labels, start, key.seed + 1)

        out = self.store.images_apart(ClassImagesKey(key, tuple(int(c) for c in counts)), sample,
                                      dataset, labels_from_counts(counts, key.seed), self.progress)
        return out.images, out.labels

    def _generated(self, generator: Generator, dataset: Dataset, n: int) -> GeneratedImages:
        key, persist = self.stream(generator, dataset)

        def sample(labels: torch.Tensor, start: int) -> torch.Tensor:
            return sample_stream(generator, labels, start, key.seed)

        return self.store.generated_images(key, sample, dataset, n, persist, self.progress)

    def fake_features(self, generator: Generator, dataset: Dataset, spec: FeatureSpec,
                      n: int | None = None, logits: bool = False) -> Any:
        """Features of the first n images of the model's stream (`generated`); with
        `logits`, (features, logits)."""
        return self.fake_features_and_labels(generator, dataset, spec, n, logits)[0]

    def fake_features_and_labels(self, generator: Generator, dataset: Dataset, spec: FeatureSpec,
                                 n: int | None = None, logits: bool = False) -> tuple[Any, torch.Tensor]:
        """`fake_features` and the labels the images were generated for (int64, CPU): what
        the class-conditional metrics split generated features by. One extraction pass per
        (stream, extractor), with the logits where the extractor has them, shared by every
        metric; a request for fewer images is a prefix of it."""
        n = self.distinct(generator, dataset, len(dataset.train_y) if n is None else n)
        ex = self.extractor(spec, dataset)
        key, persist = self.stream(generator, dataset)

        def images(m: int) -> GeneratedImages:
            return self._generated(generator, dataset, m)

        feats = self.store.generated_features(GeneratedFeaturesKey(key, ex.tag()), n, images, ex,
                                              self.device, spec.batch_size, persist, self.progress)
        labels = self.store.labels(dataset, self.seed, n)
        if not logits:
            return feats.features[:n], labels
        if feats.logits is None:
            raise BenchError(f"feature extractor '{ex.name}' gives no class logits")
        return (feats.features[:n], feats.logits[:n]), labels

    def artifact(self, name: str) -> Path:
        """Where the cell writes artifact `name`: in its own folder, whatever the name holds
        (a plugin may build it from a name; bench.core.safe_names maps it to one safe file)."""
        from bench.core.safe_names import safe_filename

        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / safe_filename(name)


class Metric(Plugin[O]):
    """A registered metric: (Generator, Dataset, Context) -> {name: float} (+ artifacts).

    Subclasses set `version` (bump it when results change, so caches and history segments
    follow), `values`: the declaration (bench.record.values.Value: role, ideal, aspect) of every
    value they return, by exact name or prefix (`swd` covers `swd_8`), and `primary`, the
    one score the summary ranks and a leaderboard sorts by. A value may come with its 95%
    interval as `<value>.lo` / `<value>.hi` (bench.record.values.with_interval).
    """

    version: ClassVar[str] = "1"
    needs_latent: ClassVar[bool] = False  # only for generators that expose their latent input
    trains_on_model_images: ClassVar[bool] = False  # trains on generated, tests on real val
    # uses class labels: the dataset's (a classifier trained on them, per-class statistics)
    # and the generator's (images generated for a class); `labels_for` says what for. Refused
    # on unconditional data or models at validation (`label_need`, bench.config.suite)
    needs_labels: ClassVar[bool] = False
    labels_for: ClassVar[str] = ""
    # compares with held-out real images (the val split) as a different set from the
    # training split: `bench score` (every real image in both splits) asks for a val set
    needs_held_out: ClassVar[bool] = False
    values: ClassVar[dict[str, Value]] = {}
    primary: ClassVar[str] = ""

    @classmethod
    def value(cls, name: str) -> Value:
        """Declaration of a returned value (undeclared values are diagnostics)."""
        return lookup(cls.values, name)

    def check(self) -> None:
        """Raise BenchError for what `bench validate` can catch (missing weights files...)."""

    def used_options(self, dataset: Dataset) -> dict[str, Any]:
        """The options as a cell on `dataset` uses them, for its run's params: every classifier
        config resolved for the dataset's images (`auto` -> a classifier, None -> the recipe's
        setting). Metrics whose other defaults depend on the data fill them in too. (The cell
        key hashes the options as declared, so keys do not change with a recipe's default.)"""
        update = {k: v.resolve(dataset.image_shape) for k, v in self.options
                  if isinstance(v, ClassifierConfig)}
        return self.options.model_copy(update=update).model_dump(mode="json")

    def label_need(self) -> str | None:
        """Why this metric, with these options, needs class labels (the dataset's and the
        generator's), or None when it runs on unconditional data and models: `needs_labels`,
        or features from the real-trained classifier (trained on the labels)."""
        if self.needs_labels:
            return self.labels_for or "it uses class labels"
        for name, v in self.options:
            if isinstance(v, FeatureSpec) and v.name == "classifier":
                return (f"its `{name}` are the real-trained classifier's, trained on class labels; "
                        f"give it `{name}: {{name: inception}}` or timm features")
        return None

    def model_label_need(self) -> str | None:
        """Why this metric needs the generated images' class labels (images generated for a
        class), or None. Features of the real-trained classifier need the dataset's labels
        only: it embeds unlabelled images like any network, so an unconditional model passes."""
        return (self.labels_for or "it uses class labels") if self.needs_labels else None

    def needs_mapping(self) -> str | None:
        """Why this metric, with these options, needs a generator with a mapping network
        z -> w and a synthesis network w -> image (`Generator.has_mapping`), or None.
        `bench validate` refuses its cells on model sources that have none
        (`ModelSource.has_mapping`), quoting this reason."""
        return None

    def trains_model(self) -> str | None:
        """Why this metric, with these options, trains the cell's model source itself on data
        it chooses (`Context.train_generator`), or None when it only samples the given model.
        `bench validate` refuses the cells that pair it with a source that cannot be trained,
        quoting this reason."""
        return None

    @abstractmethod
    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]: ...
