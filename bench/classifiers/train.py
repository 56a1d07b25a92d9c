"""The one training loop: data stays on the device as uint8, batches are index gathers.

Every classifier-based metric (GAN-train, GAN-test, curves, augmentation, balancing)
trains through `train_classifier`, so a speed-up or a fix here helps all of them.
On CUDA it uses bf16 autocast and channels_last; on the CPU plain float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from bench.classifiers import CLASSIFIERS
from bench.progress import bar as progress_bar
from bench.registry import Options


class AugmentOptions(Options):
    crop: int = Field(0, ge=0, description="random-crop padding in pixels (0: off)")
    flip: bool = Field(False, description="random horizontal flips (off for digits/text)")


class ClassifierConfig(Options):
    """A classifier and how to train it. Part of every cache key that involves it."""

    name: str = Field("small_cnn", description="registered classifier (see `bench list`)")
    args: dict[str, Any] = Field(default_factory=dict, description="architecture arguments")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    schedule: Literal["cosine", "onecycle", "constant"] = "onecycle"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: AugmentOptions = Field(default_factory=AugmentOptions)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CLASSIFIERS:  # unknown, or its module failed to import
            raise ValueError(CLASSIFIERS.explain(v))
        return v


@dataclass
class TrainedClassifier:
    model: nn.Module
    config: ClassifierConfig
    image_shape: tuple[int, int, int]
    num_classes: int


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]; done on the device, batch by batch."""
    return x.float() / 127.5 - 1.0  # not in place: float inputs (PPL) must stay untouched


def _augment(x: torch.Tensor, aug: AugmentOptions, gen: torch.Generator) -> torch.Tensor:
    if aug.flip:
        flip = torch.rand(x.shape[0], device=x.device, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if aug.crop:
        p = aug.crop
        n, _, h, w = x.shape
        padded = F.pad(x, (p, p, p, p), mode="reflect" if p < min(h, w) else "constant")
        # one shared random translation per batch would bias; per-sample offsets via unfold is
        # heavy, so gather with per-sample index grids instead.
        dx = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=gen)
        dy = torch.randint(0, 2 * p + 1, (n,), device=x.device, generator=gen)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # (n, h)
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # (n, w)
        idx_n = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return x


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def train_classifier(
    cfg: ClassifierConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    device: torch.device,
    seed: int,
    desc: str = "train classifier",
    progress: bool = True,
) -> TrainedClassifier:
    """Train `cfg` on uint8 images `x` (N, C, H, W) with labels `y`; returns the eval-mode model."""
    if x.shape[0] == 0:
        raise ValueError("cannot train a classifier on an empty set")
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    c, h, w = x.shape[1:]
    factory = CLASSIFIERS.get(cfg.name)
    model = factory(in_chans=c, num_classes=num_classes, image_size=h, **cfg.args).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    x = x.to(device, non_blocking=True)
    y = y.to(device, non_blocking=True)
    n = x.shape[0]
    bs = min(cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = cfg.epochs * steps_per_epoch
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
            weight_decay=cfg.weight_decay,
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "onecycle":
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    else:
        sched = None
    model.train()
    bar = progress_bar(range(cfg.epochs), desc, progress, unit="ep")
    for _ in bar:
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(steps_per_epoch):
            idx = perm[i * bs : (i + 1) * bs]
            if idx.numel() < 2 and n > 1:  # BatchNorm cannot train on a single sample
                continue
            xb = _augment(to_float(x[idx]), cfg.augment, gen)
            if device.type == "cuda":
                xb = xb.contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                loss = F.cross_entropy(model(xb), y[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return TrainedClassifier(model, cfg, (int(c), int(h), int(w)), num_classes)


@torch.no_grad()
def predict(
    clf: TrainedClassifier, x: torch.Tensor, device: torch.device, batch_size: int = 1024,
    features: bool = False,
) -> torch.Tensor:
    """Logits (or penultimate features) for uint8 images, in batches, returned on the CPU."""
    model = clf.model
    outs = []
    for i in range(0, x.shape[0], batch_size):
        xb = to_float(x[i : i + batch_size].to(device, non_blocking=True))
        if device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
            out = model.forward_features(xb) if features else model(xb)
        outs.append(out.float().cpu())
    return torch.cat(outs) if outs else torch.empty(0)


@dataclass
class Evaluation:
    accuracy: float
    per_class: np.ndarray  # recall of each class (nan where a class has no samples)
    predictions: np.ndarray

    @property
    def balanced_accuracy(self) -> float:
        return float(np.nanmean(self.per_class))

    @property
    def n(self) -> int:
        """Test images the accuracy is over (what its Wilson interval needs)."""
        return len(self.predictions)


def evaluate(clf: TrainedClassifier, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> Evaluation:
    pred = predict(clf, x, device).argmax(1).numpy()
    yt = y.cpu().numpy()
    k = clf.num_classes
    correct = np.bincount(yt[pred == yt], minlength=k).astype(float)
    total = np.bincount(yt, minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(total > 0, correct / total, np.nan)
    return Evaluation(float((pred == yt).mean()), per_class, pred)
