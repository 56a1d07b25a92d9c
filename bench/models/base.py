"""The Generator contract and the ModelSource plugin that builds one for a dataset."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch

from bench.core.errors import BenchError
from bench.core.registry import O, Plugin
from bench.data.base import DataInfo, Dataset

if TYPE_CHECKING:
    from bench.infra.cache import Cache


class Generator(ABC):
    """A class-conditional image generator.

    `sample(n, labels, seed)` returns uint8 images (n, C, H, W) of the requested classes;
    the same seed gives the same images. Latent-space metrics (PPL) additionally use
    `latent_dim` and `sample_latent` where a generator offers them, `latent_norm` (the
    distribution its own `sample` draws z from, so interpolated latents stay in it), and
    `map_latent` / `render_w` where it has a mapping network z -> w (StyleGAN-style).
    """

    image_shape: tuple[int, int, int]
    num_classes: int
    latent_dim: int | None = None
    # the distribution `sample` draws z from: "gaussian" N(0, I) (|z| about sqrt(latent_dim)),
    # or "unit" (uniform on the unit sphere, or a generator that normalises z itself)
    latent_norm: Literal["gaussian", "unit"] = "gaussian"
    # a finite pool (pre-generated samples, real images served as a model): how many distinct
    # images it holds, in total and per class; None for a network, which has no such limit.
    # Requests are capped to what the pool holds without repeats (Context.generated), so
    # that no interval counts one image twice.
    distinct_images: int | None = None
    distinct_per_class: tuple[int, ...] | None = None

    @abstractmethod
    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor: ...

    def sample_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """uint8 images for latent codes z (n, latent_dim)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its latent input")

    def render_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 255] before quantisation: path length needs differences far
        below one grey level (epsilon 1e-4), which uint8 output would round away."""
        return self.sample_latent(z, labels).float()

    def render_latent_grad(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`render_latent` differentiable in z (float images in [0, 255], autograd on):
        what latent projection optimises z through. Generators without it raise
        NotImplementedError, and that metric falls back to a random search over z."""
        raise NotImplementedError(f"{type(self).__name__} gives no gradient with respect to z")

    def map_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """w = the mapping network's output for latent codes z (n, latent_dim), for
        generators that have one; path length is then measured along lines in w."""
        raise NotImplementedError(f"{type(self).__name__} has no mapping network")

    def render_w(self, w: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 255] from mapping-network outputs w (see `map_latent`)."""
        raise NotImplementedError(f"{type(self).__name__} has no mapping network")

    @property
    def has_mapping(self) -> bool:
        """Whether the generator overrides both `map_latent` and `render_w`."""
        cls = type(self)
        return cls.map_latent is not Generator.map_latent and cls.render_w is not Generator.render_w

    def sample_stream(self, labels: torch.Tensor, start: int, seed: int) -> torch.Tensor:
        """Images for `labels[start:]`, one block of the sample stream whose labels so far
        are `labels` (bench.infra.store samples a model's stream chunk by chunk). By default one
        `sample` call with a seed derived from (seed, start), so a block never depends on
        how many blocks were asked for before; a pool of images overrides it to walk its
        images without replacement across blocks."""
        return self.sample(len(labels) - start, labels[start:], seed=block_seed(seed, start))


def block_seed(seed: int, start: int) -> int:
    """The seed of the stream block starting at image `start` (31 bits: any RNG takes it)."""
    h = hashlib.sha256(f"{seed}:{start}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def sample_stream(generator: Any, labels: torch.Tensor, start: int, seed: int) -> torch.Tensor:
    """`generator.sample_stream`, or its default for a duck-typed generator (only `sample`)."""
    if isinstance(generator, Generator) or hasattr(generator, "sample_stream"):
        return generator.sample_stream(labels, start, seed)
    return generator.sample(len(labels) - start, labels[start:], seed=block_seed(seed, start))


@dataclass
class BuildContext:
    """What a model source may use to build its generator (training a baseline, say)."""

    device: torch.device
    seed: int
    cache: Cache
    progress: bool = True
    # called with (name, model, metrics history, params) to log a trained generator to MLflow
    log_trained: Any = None
    # the tracking store the suite uses: where `source: mlflow` models are read from (None:
    # MLflow's own default, MLFLOW_TRACKING_URI)
    tracking_uri: str | None = None


class ModelSource(Plugin[O]):
    """A registered way to obtain a Generator (reference, samples file, trained baseline...)."""

    has_latent: ClassVar[bool] = False  # whether its generators expose latent_dim / sample_latent (PPL)
    trainable: ClassVar[bool] = False  # whether `bench train` trains it (the GAN baselines)
    # whether its samples may be written to the cache for other processes and runs: not for a
    # generator object that lives only during one bench.evaluate call
    persist_samples: ClassVar[bool] = True

    def check_allowed(self) -> None:
        """Raise BenchError when a shared runner (bench.core.allowlist) does not allow the code this
        source would run (an imported target, an unpickled file). Sources that run no code
        chosen by the suite allow everything. Suite validation calls it always, before any
        other check can import or unpickle."""

    def check(self, info: DataInfo) -> None:
        """Raise BenchError when this model cannot match the dataset (shape, classes, files)."""

    def has_mapping(self, info: DataInfo) -> bool | None:
        """Whether its generators have a mapping network z -> w and a synthesis network
        w -> image (`Generator.has_mapping`): True, False, or None when it cannot be told
        before building (then the metric that needs w says so when the cell runs). Suite
        validation refuses `space: w` metrics on sources that answer False."""
        return None if self.has_latent else False

    def unconditional(self) -> str | None:
        """What makes this source's images label-free (e.g. "a folder of samples without
        class sub-folders"), or None when it generates the classes it is asked for. Suite
        validation refuses the metrics that need labels on such a source, quoting this."""
        return None

    def serves_split(self) -> str | None:
        """The real split ("train" or "val") whose images this source hands out, or None.

        Suite validation refuses a source serving "val" in a metric that trains a classifier
        on the model's images and tests it on val (bench.config.leakage)."""
        return None

    @abstractmethod
    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator: ...

    def build_on(self, data: Dataset, ctx: BuildContext) -> Generator:
        """A generator of this source trained on `data` instead of the suite's dataset: for
        protocols that choose the training data themselves (augmentation's `generator_data:
        subset` trains on each real subset, balancing on the imbalanced split). `data` is
        usually a view (`Dataset.restrict_train`) with a digest of its own, so a trainable
        source's training cache, keyed by digest, keeps one entry per subset. Only `trainable`
        sources can; for the others `bench validate` refuses such cells beforehand."""
        if not self.trainable:
            raise BenchError(f"model source {type(self).__name__} cannot be trained on chosen "
                             "data: only trainable sources (cgan, baseline) can.")
        return self.build(data, ctx)


def check_samples(model_name: str, gen: Generator, dataset: Dataset, n: int = 32) -> None:
    """Sample a few images and check shape, dtype and count before any metric runs."""
    labels = torch.arange(n) % dataset.num_classes
    out = gen.sample(n, labels, seed=0)
    want = (n, *dataset.image_shape)
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8:
        raise BenchError(
            f"model '{model_name}': sample() must return a uint8 torch tensor, got "
            f"{getattr(out, 'dtype', type(out))}. Convert images to uint8 in [0, 255]."
        )
    if tuple(out.shape) != want:
        raise BenchError(
            f"model '{model_name}': sample({n}) returned shape {tuple(out.shape)}, the dataset "
            f"needs {want} (N, C, H, W). Match the model's output to the dataset's image size."
        )
