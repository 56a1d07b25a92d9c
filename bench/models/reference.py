"""Reference generators with known quality: real data and controlled failure modes.

They calibrate every metric on the user's own data: a leaderboard shows how far a model
is from `real` and from known failures (noise, wrong labels, missing classes, copying,
and `constant`: one flat grey image for every request, the floor of every metric).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data.base import DataInfo, Dataset
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource, block_seed
from bench.models.pool import PoolGenerator


class ReferenceOptions(Options):
    kind: Literal["real", "noise", "blur", "label_shuffle", "mode_drop", "memorize",
                  "constant"] = Field(
        "real", description="real | noise | blur | label_shuffle | mode_drop | memorize | constant"
    )
    split: Literal["train", "val"] = Field("train", description="which real split is served "
                                           "(val: refused in metrics that train on the model's "
                                           "images, see bench.config.leakage)")
    sigma: float = Field(0.3, gt=0, description="noise: std of added noise, as a fraction of 255")
    keep_classes: list[int] | None = Field(
        None, description="mode_drop: classes the generator covers (default: the first half)"
    )
    num_images: int = Field(100, ge=1, description="memorize: how many training images it replays")
    blur_sigma: float = Field(1.0, gt=0, description="blur: Gaussian blur std in pixels")
    value: int = Field(128, ge=0, le=255, description="constant: the grey level of every pixel")
    ranked: bool = Field(False, description="rank this calibration row among the models "
                         "(guard-rail suites); by default reference rows are shown apart, unranked")

    @model_validator(mode="after")
    def _kind_options(self):
        if self.keep_classes is not None and self.kind != "mode_drop":
            raise ValueError("keep_classes only applies to kind: mode_drop")
        if self.value != 128 and self.kind != "constant":  # not fields_set: dumps round-trip
            raise ValueError("value only applies to kind: constant")
        return self


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of uint8 images (reflect padding): realistic layout, lost detail."""
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = x.float()
    pad = min(r, x.shape[-1] - 1, x.shape[-2] - 1)
    k = k[r - pad : r + pad + 1] / k[r - pad : r + pad + 1].sum()
    y = torch.nn.functional.pad(y, (pad, pad, pad, pad), mode="reflect")
    y = torch.nn.functional.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    y = torch.nn.functional.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return y.round().clamp(0, 255).to(torch.uint8)


class ReferenceGenerator(PoolGenerator):
    def __init__(self, dataset: Dataset, opts: ReferenceOptions):
        x, y = (dataset.train_x, dataset.train_y) if opts.split == "train" else (dataset.val_x, dataset.val_y)
        self.opts = opts
        k = dataset.num_classes
        if opts.kind == "memorize":
            # a fixed, class-balanced subset of training images, replayed forever
            rng = np.random.default_rng(1234)
            per = max(1, opts.num_images // k)
            keep = np.concatenate(
                [rng.permutation(np.flatnonzero(y.numpy() == c))[:per] for c in range(k)]
            )
            x, y = x[keep], y[keep]
        super().__init__(x, y, k)
        if opts.kind == "memorize":
            # a replay stands for a *network* that repeats a few training images: the repeats
            # are its defect (collapse), not a pool to count by distinct images. The other
            # kinds are degraded views of a real pool and are counted like one.
            self.distinct_images = self.distinct_per_class = None
        # real images the suite's classifiers and generators never trained on: the row whose
        # values are the targets of `ref` ideals (bench.record.values)
        self.tags = {"held_out": "true"} if opts.kind == "real" and opts.split == "val" else {}
        classes = opts.keep_classes if opts.keep_classes is not None else list(range(max(1, k // 2)))
        self.keep = np.array(sorted(set(classes)))

    def _served(self, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """The classes whose images answer `labels` (prefix-stable: the answer for a
        stream's first m labels does not change as the stream grows)."""
        rng = np.random.default_rng(seed + 7919)
        lab = labels.clone()
        if self.opts.kind == "label_shuffle":
            # right images, wrong labels: the image's class is independent of the request
            lab = torch.from_numpy(rng.integers(0, self.num_classes, len(labels)))
        elif self.opts.kind == "mode_drop":
            missing = ~torch.from_numpy(np.isin(lab.numpy(), self.keep))
            lab[missing] = torch.from_numpy(rng.choice(self.keep, int(missing.sum())))
        return lab

    def _degrade(self, out: torch.Tensor, seed: int) -> torch.Tensor:
        if self.opts.kind == "blur":
            out = _gaussian_blur(out, self.opts.blur_sigma)
        if self.opts.kind == "noise":
            g = torch.Generator().manual_seed(seed)
            noise = torch.randn(out.shape, generator=g) * (self.opts.sigma * 255.0)
            out = (out.float() + noise).round().clamp(0, 255).to(torch.uint8)
        return out

    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        if self.opts.kind == "constant":  # the requested labels, and no information about them
            return torch.full((n, *self.image_shape), self.opts.value, dtype=torch.uint8)
        return self._degrade(super().sample(n, self._served(labels, seed), seed), seed)

    def sample_stream(self, labels: torch.Tensor, start: int, seed: int) -> torch.Tensor:
        if self.opts.kind == "constant":
            return torch.full((len(labels) - start, *self.image_shape), self.opts.value,
                              dtype=torch.uint8)
        out = super().sample_stream(self._served(labels, seed), start, seed)
        return self._degrade(out, block_seed(seed, start))


@MODELS.register("reference")
class Reference(ModelSource[ReferenceOptions]):
    """Real images (upper bound) or a controlled failure mode of them (noise, wrong labels...)."""

    def check(self, info: DataInfo) -> None:
        bad = [c for c in (self.options.keep_classes or []) if not 0 <= c < info.num_classes]
        if bad:
            raise BenchError(
                f"keep_classes {bad} out of range: the dataset has classes 0..{info.num_classes - 1}"
            )

    def serves_split(self) -> str | None:
        """Every kind but `constant` hands out (altered) images of its `split`."""
        return None if self.options.kind == "constant" else self.options.split

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        return ReferenceGenerator(dataset, self.options)
