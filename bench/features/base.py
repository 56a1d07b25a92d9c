"""FeatureExtractor: uint8 images (N, C, H, W) -> float features (N, D), in streamed batches.

Every extractor has a `tag()`, the identity of its weights and preprocessing: it is part of
the cache key of real-data features and is logged beside every value computed from them
(FID on one resize filter is not FID on another).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from pydantic import Field, model_validator

from bench.core.errors import BenchError
from bench.core.progress import bar
from bench.core.registry import O, Options, Plugin, Registry, did_you_mean


class FeatureExtractor(Plugin[O]):
    has_logits = False

    def check(self) -> None:
        """Raise BenchError for what `bench validate` can catch before any work: a weights
        file that is not there. `prepare` loads (and reports unreadable files)."""

    def prepare(self, dataset: Any, env: Any) -> None:
        """Load weights / train what is needed. `env` has device, seed, cache, store
        (bench.run.store.Store: loaded networks and the real classifier are kept there), progress."""

    @abstractmethod
    def tag(self) -> str: ...

    @abstractmethod
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 batch on the device -> (features, logits or None)."""

    @torch.no_grad()
    def extract_all(self, x: torch.Tensor, device: torch.device, batch_size: int = 128,
                    progress: bool = False, desc: str = "features", logits: bool = True,
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features and logits of all of `x` in one pass (logits None where the extractor
        has none, or not kept with `logits=False`), streamed in batches to the CPU: what the
        store keeps of generated images, so the Inception Score shares the FID's pass."""
        feats: list[torch.Tensor] = []
        logs: list[torch.Tensor] | None = [] if logits else None
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

    def extract(self, x: torch.Tensor, device: torch.device, batch_size: int = 128,
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
    batch_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.name not in FEATURES:  # unknown, or its module failed to import
            raise ValueError(FEATURES.explain(self.name))
        cls = FEATURES.get(self.name)
        extra = dict(self.model_extra or {})
        unknown = set(extra) - set(cls.Options.model_fields)
        if unknown:
            u = sorted(unknown)[0]
            raise ValueError(f"unknown option '{u}' for feature extractor '{self.name}'."
                             f"{did_you_mean(u, list(cls.Options.model_fields))} Known: "
                             f"{', '.join(cls.Options.model_fields) or '(none)'}")
        cls.Options(**extra)  # type errors surface here, at validation time
        return self

    def build(self) -> FeatureExtractor:
        cls = FEATURES.get(self.name)
        return cls(cls.Options(**dict(self.model_extra or {})))


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Grey images become 3-channel, as every ImageNet network expects."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
