"""FeatureExtractor: uint8 images (N, C, H, W) -> float features (N, D), in streamed batches.

Every extractor has a `tag()`, the identity of its weights and preprocessing: it is part of
the cache key of real-data features and is logged beside every value computed from them
(FID on one resize filter is not FID on another).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator

from bench.core.errors import BenchError
from bench.core.progress import bar
from bench.core.registry import O, Options, Plugin, Registry, did_you_mean

GPU_BATCH = 128


class FeatureExtractor(Plugin[O]):
    has_logits = False
    # Images per forward pass on the CPU when the suite sets none. The ImageNet networks
    # (224-299 px) take 8: at 128 their activations are hundreds of MiB per layer, which
    # glibc's malloc maps and unmaps on every batch, and Inception-v3 ran at 223 ms per image
    # (3.5 GB peak) instead of 146 ms (0.9 GB) on 2 cores (docs/performance.md).
    cpu_batch_size: ClassVar[int] = GPU_BATCH

    def batch_size(self, device: torch.device, requested: int | None = None) -> int:
        """`requested`, else 128 on an accelerator and the extractor's `cpu_batch_size` on the CPU."""
        if requested is not None:
            return requested
        return self.cpu_batch_size if torch.device(device).type == "cpu" else GPU_BATCH

    def check(self) -> None:
        """Raise BenchError for what `bench validate` can catch before any work: a weights
        file that is not there. `prepare` loads (and reports unreadable files)."""

    def prepare(self, dataset: Any, env: Any) -> None:
        """Load weights / train what is needed. `env` has device, seed, cache, store
        (bench.infra.store.Store: loaded networks and the real classifier are kept there), progress."""

    @abstractmethod
    def tag(self) -> str: ...

    @abstractmethod
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 batch on the device -> (features, logits or None)."""

    @torch.no_grad()
    def extract_all(self, x: torch.Tensor, device: torch.device, batch_size: int | None = None,
                    progress: bool = False, desc: str = "features", logits: bool = True,
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features and logits of all of `x` in one pass (logits None where the extractor
        has none, or not kept with `logits=False`), streamed in batches to the CPU: what the
        store keeps of generated images, so the Inception Score shares the FID's pass."""
        feats: list[torch.Tensor] = []
        logs: list[torch.Tensor] | None = [] if logits else None
        batch_size = self.batch_size(device, batch_size)
        steps = range(0, x.shape[0], batch_size)
        for i in bar(steps, desc, progress, unit="batch"):
            f, lg = self._forward(x[i : i + batch_size].to(device, non_blocking=True))
            feats.append(f.float().cpu())
            if lg is None:
                logs = None
            elif logs is not None:
                logs.append(lg.float().cpu())
        f = torch.cat(feats) if feats else torch.empty(0)
        return f, (torch.cat(logs) if logs else None)

    def extract(self, x: torch.Tensor, device: torch.device, batch_size: int | None = None,
                logits: bool = False, progress: bool = False, desc: str = "features"):
        """Features (and logits when asked) for all of `x`, streamed in batches to the CPU."""
        f, lg = self.extract_all(x, device, batch_size, progress, desc, logits=logits)
        if not logits:
            return f
        if lg is None:
            raise BenchError(f"feature extractor '{self.name}' gives no class logits")
        return f, lg


# The registry lives beside the base class (bench.features re-exports it) so that FeatureSpec
# below can check names without importing the package back.
FEATURES: Registry[type[FeatureExtractor]] = Registry(
    "features", ["bench.features.inception", "bench.features.timm_features", "bench.features.classifier",
                 "bench.features.vgg16"],
    base=FeatureExtractor, what="feature extractor",
)


class FeatureSpec(Options):
    """`features: {name: inception | classifier | timm, ...its options}` in a metric's options."""

    model_config = {**Options.model_config, "extra": "allow"}
    name: str = Field("inception", description="registered feature extractor (see `bench list`)")
    batch_size: int | None = Field(None, ge=1, description="images per forward pass (default: "
                                   "128 on a GPU; on the CPU 8 for the ImageNet networks "
                                   "inception, vgg16 and timm, 128 for classifier)")

    @classmethod
    def options_for(cls, raw: dict) -> type[Options] | None:
        """The options model of the extractor `raw` names (its extras are that model's
        fields), for the suite's messages about them."""
        name = raw.get("name", "inception")
        return FEATURES.get(name).Options if isinstance(name, str) and name in FEATURES else None

    @model_validator(mode="after")
    def _check(self):
        if self.name not in FEATURES:  # unknown, or its module failed to import
            raise ValueError(FEATURES.explain(self.name))
        cls = FEATURES.get(self.name)
        extra = dict(self.model_extra or {})
        unknown = set(extra) - set(cls.Options.model_fields)
        if unknown:
            u = sorted(unknown)[0]
            known = [*type(self).model_fields, *cls.Options.model_fields]
            raise ValueError(f"unknown option '{u}' for feature extractor '{self.name}'."
                             f"{did_you_mean(u, known)} Known: {', '.join(known)}")
        cls.Options(**extra)  # type errors surface here, at validation time
        return self

    def build(self) -> FeatureExtractor:
        cls = FEATURES.get(self.name)
        return cls(cls.Options(**dict(self.model_extra or {})))


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Grey images become 3-channel, as every ImageNet network expects."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
