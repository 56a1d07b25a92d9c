"""Any timm model as a feature extractor (pooled pre-logits features), weights from a local
file only (DINOv2 ViTs are the modern recommendation: `model: vit_small_patch14_dinov2`).

`random_init: true` (baselines, tests) initialises the network from a fixed seed, so every
process of a suite measures in the same random feature space. The extractor's tag (the key
of cached real features) holds a hash of the weights themselves wherever no file names them
(random or from the hub cache): features of other weights are never served from the cache."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.features import FEATURES
from bench.features.base import FeatureExtractor, to_rgb
from bench.infra.cache import stable_hash
from bench.infra.store import FeatureNetworkKey

RANDOM_INIT_SEED = 0  # torch seed of `random_init` weights (the global RNG is left as it was)


class TimmOptions(Options):
    model: str = Field(description="timm model name, e.g. resnet50, vit_small_patch14_dinov2")
    weights: Path | None = Field(None, description="local weights file (state dict / safetensors)")
    image_size: int | None = Field(None, ge=8, description="resize to this side (default: model's)")
    random_init: bool = Field(False, description="allow random weights (baselines/tests only)")


@FEATURES.register("timm")
class TimmFeatures(FeatureExtractor[TimmOptions]):
    """Any timm model's pooled features, with weights from a local file."""

    cpu_batch_size = 8  # 224-299 px activations: see FeatureExtractor.cpu_batch_size

    def prepare(self, dataset: Any, env: Any) -> None:
        import timm

        o = self.options
        name = f"timm:{o.model}:{o.weights}:{'random' if o.random_init else 'pretrained'}"

        def load() -> tuple[Any, int, torch.Tensor, torch.Tensor, str]:
            if o.model not in timm.list_models():
                raise BenchError(f"timm has no model '{o.model}' (timm.list_models() lists them).")
            if o.weights is not None and not o.weights.is_file():
                raise BenchError(f"features.weights: {o.weights} not found.")
            kw: dict[str, Any] = {"num_classes": 0}
            offline = False
            if o.weights is not None:
                kw.update(pretrained=True, pretrained_cfg_overlay={"file": str(o.weights)})
            elif not o.random_init:
                offline = True  # the local Hugging Face hub cache only: nothing is downloaded
                kw.update(pretrained=True)
            try:
                with _hub_offline(offline), torch.random.fork_rng(devices=[]):
                    torch.manual_seed(RANDOM_INIT_SEED)
                    net = timm.create_model(o.model, **kw).eval()
            except Exception as e:  # noqa: BLE001 - timm raises many types for missing/incompatible weights
                raise BenchError(
                    f"cannot load weights for timm model '{o.model}' ({type(e).__name__}: {e}). Put the "
                    "weights file somewhere local and set `weights: /path/to/file` in the features "
                    "options (or fill the Hugging Face hub cache beforehand)."
                ) from None
            cfg: dict[str, Any] = getattr(net, "pretrained_cfg", {})  # every timm model has one
            size = o.image_size or cfg.get("input_size", (3, 224, 224))[-1]
            mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406)), device=env.device).view(1, 3, 1, 1)
            std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), device=env.device).view(1, 3, 1, 1)
            # a file is named by its modification time; random or hub weights by their values
            digest = (stable_hash(str(o.weights.stat().st_mtime_ns), 8) if o.weights
                      else weights_digest(net))
            return net.to(env.device), size, mean, std, digest

        self.net, self.size, self.mean, self.std, self.digest = env.store.get(
            FeatureNetworkKey(name), load)

    def tag(self) -> str:
        o = self.options
        w = o.weights.name if o.weights else "random-init" if o.random_init else "hub"
        return f"timm:{self.options.model}:{w}-{self.digest}:bilinear{self.size}"

    def _forward(self, x: torch.Tensor):
        x = to_rgb(x).float() / 255.0
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=True)
        return self.net((x - self.mean) / self.std), None


def weights_digest(net: torch.nn.Module) -> str:
    """8 hex digits of a hash of every parameter and buffer (names and bytes)."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:8]


@contextlib.contextmanager
def _hub_offline(on: bool) -> Iterator[None]:
    """Hugging Face hub offline for the one `create_model` call that may read its cache, then
    as it was: the process's (and the user's) other hub use is left alone. huggingface_hub
    reads the variable at import, so its constant is set (and restored) too."""
    if not on:
        yield
        return
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:
        hf_constants = None  # type: ignore[assignment]
    constant = getattr(hf_constants, "HF_HUB_OFFLINE", None)
    if hf_constants is not None:
        hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before
        if hf_constants is not None and constant is not None:
            hf_constants.HF_HUB_OFFLINE = constant
