"""The one training loop: uint8 images, batches gathered by index, floats only per batch.

Every classifier-based metric (GAN-train, GAN-test, curves, augmentation, balancing)
trains through `train_classifier`, so a speed-up or a fix here helps all of them.
On CUDA it uses bf16 autocast and channels_last; on the CPU plain float32.

Memory (`TrainingData`): the training images stay where they are (CPU memory, or a
memory-mapped file such as the store's persisted sample stream) and each batch is
gathered there and moved to the device (through pinned memory on CUDA). Only when the
whole uint8 set fits `DEVICE_DATA_BUDGET` (1 GiB: 350k images of 3x32x32, 87k of 3x64x64)
is it copied to an accelerator once, and batches are gathered there: the faster path,
no host work per step. Either way the loop holds one float batch at a time, never a float
copy of the set; both paths draw the same permutations and give the same model.

`ClassifierConfig` leaves every training setting at None ("the recipe's default") and
its name at "auto": `resolve(image_shape)` picks the classifier from the data (small_cnn
for grey or smaller-than-32-pixel images, such as the 8x8 digits; `airbench` for RGB
images of 32 pixels and more) and fills in the settings of that classifier's recipe (the
`recipe` its plugin class carries, bench.classifiers.base). The airbench classifier (Jordan
2024, arXiv 2404.00498) carries its own recipe and training function (its `fit`), still
reached through `train_classifier`; every other classifier trains in `fit_generic`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from bench.classifiers import CLASSIFIERS
from bench.classifiers.base import Classifier
from bench.core.progress import bar as progress_bar
from bench.core.registry import Options

AUTO = "auto"
Flip = bool | Literal["alternating"]
Schedule = Literal["cosine", "onecycle", "constant", "triangle"]


class AugmentOptions(Options):
    crop: int | None = Field(None, ge=0, description="random translation by up to this many "
                             "pixels, reflect padding (0: off; default: 0, airbench 2)")
    flip: Flip | None = Field(None, description="horizontal flips: true (random), 'alternating' "
                              "(a seeded random half in even epochs, the other half in odd "
                              "ones), false (default; airbench: alternating). Off for digits/text")


@dataclass(frozen=True)
class Recipe:
    """Every training setting of a classifier, none left to a default (`ClassifierConfig.settings`)."""

    name: str
    epochs: int
    batch_size: int
    optimizer: Literal["adamw", "sgd"]
    lr: float
    weight_decay: float
    momentum: float
    schedule: Schedule
    label_smoothing: float
    crop: int
    flip: Flip
    tta: int
    compile: bool


def auto_classifier(image_shape: Sequence[int]) -> str:
    """What `name: auto` means for images of shape (C, H, W): airbench for RGB images of at
    least 32x32, small_cnn otherwise (grey or small images, e.g. the 8x8 digits)."""
    c, h, w = (int(v) for v in image_shape)
    return "airbench" if c == 3 and min(h, w) >= 32 else "small_cnn"


class ClassifierConfig(Options):
    """A classifier and how to train it. Part of every cache key that involves it.

    Settings left at None take the default of the classifier's recipe (its plugin class's
    `recipe`, bench.classifiers.base): the generic one (30 epochs, AdamW, one-cycle) or airbench's (10 epochs, Nesterov SGD at
    batch 1,024, label smoothing 0.2, flip + translate, test-time augmentation).
    """

    name: str = Field(AUTO, description="registered classifier (see `bench list`), or auto: "
                      "small_cnn for grey or < 32 px images, airbench for RGB >= 32 px")
    args: dict[str, Any] = Field(default_factory=dict, description="architecture arguments")
    epochs: int | None = Field(None, ge=1, description="default 30; airbench 10")
    batch_size: int | None = Field(None, ge=1, description="default 128; airbench 1024")
    optimizer: Literal["adamw", "sgd"] | None = Field(
        None, description="default adamw; airbench sgd (Nesterov; the only one it takes)")
    lr: float | None = Field(None, gt=0, description="default 2e-3; airbench 11.5 per 1,024 "
                             "examples (decoupled from batch size and momentum)")
    weight_decay: float | None = Field(None, ge=0, description="default 5e-4; airbench 0.0153 "
                                       "per 1,024 examples (decoupled from the lr)")
    momentum: float | None = Field(None, ge=0, lt=1, description="default 0.9; airbench 0.85")
    schedule: Schedule | None = Field(None, description="default onecycle; airbench triangle "
                                      "(0.2 -> 1 at 23% of the steps -> 0.07)")
    label_smoothing: float | None = Field(None, ge=0, lt=1, description="default 0; airbench 0.2")
    augment: AugmentOptions = Field(default_factory=AugmentOptions)
    tta: int | None = Field(None, ge=0, le=2, description="test-time augmentation of the "
                            "logits: 0 none (default), 1 mirror, 2 mirror + 1-pixel "
                            "translations (airbench)")
    compile: bool = Field(False, description="torch.compile the training forward pass (worth it "
                          "on CUDA for large sets; off by default)")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v != AUTO and v not in CLASSIFIERS:  # unknown, or its module failed to import
            raise ValueError(CLASSIFIERS.explain(v))
        return v

    def settings(self, image_shape: Sequence[int] | None = None) -> Recipe:
        """The concrete settings for images of `image_shape` (C, H, W): `auto` becomes a
        classifier, None the recipe's default. The shape is needed only for `auto`."""
        name = self.name
        if name == AUTO:
            if image_shape is None:
                raise ValueError("classifier 'auto' is chosen from the data: resolve the config "
                                 "with the images' shape first (ClassifierConfig.resolve)")
            name = auto_classifier(image_shape)
        d = CLASSIFIERS.get(name).recipe  # the classifier plugin carries its recipe

        def pick(value: Any, key: str) -> Any:
            return d[key] if value is None else value

        a = self.augment
        return Recipe(name=name, epochs=pick(self.epochs, "epochs"),
                      batch_size=pick(self.batch_size, "batch_size"),
                      optimizer=pick(self.optimizer, "optimizer"), lr=pick(self.lr, "lr"),
                      weight_decay=pick(self.weight_decay, "weight_decay"),
                      momentum=pick(self.momentum, "momentum"),
                      schedule=pick(self.schedule, "schedule"),
                      label_smoothing=pick(self.label_smoothing, "label_smoothing"),
                      crop=pick(a.crop, "crop"), flip=pick(a.flip, "flip"),
                      tta=pick(self.tta, "tta"), compile=self.compile)

    def resolve(self, image_shape: Sequence[int] | None = None) -> ClassifierConfig:
        """This config with `auto` and every None replaced (see `settings`): what a trained
        classifier records, and what cache keys of trained classifiers should hold."""
        s = self.settings(image_shape)
        return self.model_copy(update={
            "name": s.name, "epochs": s.epochs, "batch_size": s.batch_size,
            "optimizer": s.optimizer, "lr": s.lr, "weight_decay": s.weight_decay,
            "momentum": s.momentum, "schedule": s.schedule, "label_smoothing": s.label_smoothing,
            "augment": AugmentOptions(crop=s.crop, flip=s.flip), "tta": s.tta})


@dataclass
class TrainedClassifier:
    model: Classifier
    config: ClassifierConfig
    image_shape: tuple[int, int, int]
    num_classes: int


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]; done on the device, batch by batch."""
    return x.float() / 127.5 - 1.0  # not in place: float inputs (PPL) must stay untouched


def device_layout(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A training batch in the memory layout its device trains fastest and safely in:
    channels_last on CUDA; plain NCHW on the CPU. On the CPU a channels_last batch (CIFAR
    read from torchvision's NHWC arrays is one) meets a oneDNN AVX2 kernel (torch 2.14,
    1x1 stride-2 convolution with fewer than 8 input channels, weight gradient) that
    corrupts the heap: a segfault, or a hang with two threads."""
    if device.type == "cuda":
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def _augment(x: torch.Tensor, aug: AugmentOptions, gen: torch.Generator,
             flip: torch.Tensor | None = None) -> torch.Tensor:
    """Flip (`flip`: which images to mirror; by default a random half when `aug.flip`) and
    translate by up to `aug.crop` pixels (reflect padding, per-image offsets)."""
    if flip is None and aug.flip:  # true, or 'alternating' without its epoch's mask
        flip = torch.rand(x.shape[0], device=x.device, generator=gen) < 0.5
    if flip is not None:
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


class FlipPlan:
    """Which training images to mirror in each epoch. 'alternating' (airbench's derandomised
    flip): a seeded random half in even epochs and exactly the other half in odd ones, so
    every image is seen both ways every two epochs. True: a fresh random half per batch."""

    def __init__(self, flip: Flip, n: int, gen: torch.Generator, device: torch.device):
        self.alternating = flip == "alternating"
        self.base = (torch.rand(n, device=device, generator=gen) < 0.5) if self.alternating else None

    def mask(self, idx: torch.Tensor, epoch: int) -> torch.Tensor | None:
        if self.base is None:
            return None
        return self.base[idx] ^ bool(epoch % 2)


def triangle(total: int, start: float = 0.2, peak: float = 0.23, end: float = 0.07
             ) -> Callable[[int], float]:
    """airbench's lr factor per step: linear from `start` up to 1 at `peak` of the steps,
    then linear down to `end` at the last step."""
    top = int(peak * total)

    def factor(step: int) -> float:
        if step <= top:
            return 1.0 if top == 0 else start + (1.0 - start) * step / top
        return 1.0 + (end - 1.0) * min(1.0, (step - top) / max(1, total - top))

    return factor


def lr_schedule(opt: torch.optim.Optimizer, schedule: Schedule, total: int,
                max_lr: float | list[float]) -> Any:
    """The scheduler stepped once per optimizer step (None: constant)."""
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if schedule == "triangle":
        return torch.optim.lr_scheduler.LambdaLR(opt, triangle(total))
    return None


# an accelerator keeps the whole uint8 training set when it is at most this large (bytes)
DEVICE_DATA_BUDGET = 1 << 30


class TrainingData:
    """Training images and labels as the loop reads them. Labels (8 bytes an image) always go
    to the device; images go there whole when they fit `budget` (default
    `DEVICE_DATA_BUDGET`), else stay put and move batch by batch (on the CPU neither path
    copies the set: `.to("cpu")` is the tensor itself). `batches(perm, bs)` yields (indices
    on the device, uint8 batch on the device) for one epoch's permutation: the same batches
    on both paths."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device,
                 budget: int | None = None):
        limit = DEVICE_DATA_BUDGET if budget is None else budget
        self.n = int(x.shape[0])
        self.device = device
        self.on_device = x.numel() * x.element_size() <= limit
        self.x = x.to(device, non_blocking=True) if self.on_device else x
        self.y = y.to(device, non_blocking=True)
        self.pin = device.type == "cuda" and not self.on_device

    def head(self, k: int) -> torch.Tensor:
        """The first k images on the device (airbench's whitening statistics)."""
        return self.x[:k].to(self.device, non_blocking=True)

    def batches(self, perm: torch.Tensor, bs: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        host = perm if self.on_device else perm.cpu()  # one transfer an epoch, not a step
        for i in range(math.ceil(self.n / bs)):
            idx = perm[i * bs : (i + 1) * bs]
            if self.on_device:
                yield idx, self.x[idx]
            else:
                xb = self.x[host[i * bs : (i + 1) * bs]]
                if self.pin:
                    xb = xb.pin_memory()
                yield idx, xb.to(self.device, non_blocking=True)


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
    """Train `cfg` on uint8 images `x` (N, C, H, W) with labels `y`; returns the eval-mode model.

    `auto` and unset settings are resolved from the images' shape first; then the classifier
    plugin's own trainer when it has one (airbench's `fit`), else the generic loop,
    `fit_generic`)."""
    if x.shape[0] == 0:
        raise ValueError("cannot train a classifier on an empty set")
    shape = tuple(int(v) for v in x.shape[1:])
    s = cfg.settings(shape)
    cls = CLASSIFIERS.get(s.name)
    if cls.has_own_trainer():
        fit: Any = cls.fit  # type: ignore[attr-defined]  # declared by the classifiers that have one
        return fit(cfg.resolve(shape), s, x, y, num_classes, device, seed, desc, progress)
    return fit_generic(cls, cfg.resolve(shape), s, x, y, num_classes, device, seed, desc, progress)


def fit_generic(cls: type[Classifier], cfg: ClassifierConfig, s: Recipe, x: torch.Tensor,
                y: torch.Tensor, num_classes: int, device: torch.device, seed: int,
                desc: str = "train classifier", progress: bool = True) -> TrainedClassifier:
    """The generic recipe (for every classifier without a trainer of its own): AdamW or SGD under the config's
    schedule in the shared epoch loop (`run_epochs`); `cfg` is resolved and `s` its settings."""
    c, h, w = (int(v) for v in x.shape[1:])
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    model = cls(in_chans=c, num_classes=num_classes, image_size=h, **cfg.args).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if s.compile else model
    data = TrainingData(x, y, device)
    n = data.n
    bs = min(s.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = s.epochs * steps_per_epoch
    if s.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.momentum > 0,
            weight_decay=s.weight_decay,
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    sched = lr_schedule(opt, s.schedule, total, s.lr)
    model.train()
    run_epochs(forward, opt, sched, data, s, gen, device, desc, progress)
    model.eval()
    return TrainedClassifier(model, cfg, (c, h, w), num_classes)


def run_epochs(forward: Callable[[torch.Tensor], torch.Tensor], opt: torch.optim.Optimizer,
               sched: Any, data: TrainingData, s: Recipe, gen: torch.Generator,
               device: torch.device, desc: str, progress: bool, reduction: str = "mean",
               on_epoch: Callable[[int], None] | None = None,
               on_step: Callable[[int], None] | None = None) -> int:
    """The one epoch loop every trainer shares: a seeded permutation per epoch, batches from
    `data`, augmentation (`s.crop`, `s.flip`) on the device, bf16 autocast and channels_last
    on CUDA, one optimizer and schedule step per batch. Recipes hook in per epoch
    (`on_epoch(epoch)`, before its permutation) and per step (`on_step(steps so far)`).
    Returns the optimizer steps taken."""
    n, bs = data.n, min(s.batch_size, data.n)
    aug = AugmentOptions(crop=s.crop, flip=s.flip)
    flips = FlipPlan(s.flip, n, gen, device)
    step = 0
    bar = progress_bar(range(s.epochs), desc, progress, unit="ep")
    for epoch in bar:
        if on_epoch is not None:
            on_epoch(epoch)
        perm = torch.randperm(n, device=device, generator=gen)
        for idx, xu in data.batches(perm, bs):
            if idx.numel() < 2 and n > 1:  # BatchNorm cannot train on a single sample
                continue
            xb = device_layout(_augment(to_float(xu), aug, gen, flips.mask(idx, epoch)), device)
            with _autocast(device):
                loss = F.cross_entropy(forward(xb), data.y[idx], label_smoothing=s.label_smoothing,
                                       reduction=reduction)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            if on_step is not None:
                on_step(step)
        per_image = loss.item() / (bs if reduction == "sum" else 1)
        bar.set_postfix(loss=f"{per_image:.3f}")
    return step


def tta_logits(model: torch.nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    """Logits averaged over test-time views (airbench's): 0 the image; 1 the image and its
    mirror image; 2 half of that plus half the mirror-average over the image translated by one
    pixel up-left and down-right (reflect padding)."""
    if level <= 0:
        return model(x)

    def mirror(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * model(v) + 0.5 * model(v.flip(3))

    out = mirror(x)
    if level >= 2:
        h, w = x.shape[2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = [padded[:, :, 0:h, 0:w], padded[:, :, 2 : h + 2, 2 : w + 2]]
        out = 0.5 * out + 0.25 * (mirror(shifted[0]) + mirror(shifted[1]))
    return out


@torch.no_grad()
def predict(
    clf: TrainedClassifier, x: torch.Tensor, device: torch.device, batch_size: int = 1024,
    features: bool = False,
) -> torch.Tensor:
    """Logits (or penultimate features) for uint8 images, in batches, returned on the CPU.
    Logits average the config's test-time views (`tta`); features are of the image alone."""
    model = clf.model
    tta = clf.config.settings(clf.image_shape).tta
    outs = []
    for i in range(0, x.shape[0], batch_size):
        xb = device_layout(to_float(x[i : i + batch_size].to(device, non_blocking=True)), device)
        with _autocast(device):
            out = model.forward_features(xb) if features else tta_logits(model, xb, tta)
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
