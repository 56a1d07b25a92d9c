"""airbench: the fast default classifier for RGB images of 32 pixels and more.

Our implementation of the recipe of Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a
single GPU" (arXiv 2404.00498; facts checked against the `airbench` package, 0.1.8,
`lib_airbench94.py` and `utils.py`):

- net: a 2x2 convolution without padding whose 2 * C * 4 filters are the eigenvectors of
  the training patches' covariance (and their negatives), scaled by 1 / sqrt(eigenvalue +
  5e-4) and frozen ("whitening"); its bias trains for the first 3 epochs only. GELU, then
  three blocks of conv3x3 - max-pool 2 - BN - GELU - conv3x3 - BN - GELU with widths
  64 / 256 / 256 (convs without bias, identity-initialised on their first input channels),
  a global max-pool, a bias-free linear layer and a 1/9 scale on the logits. BatchNorm
  has eps 1e-12, momentum 0.6 (torch's 0.4), a frozen weight of 1 and a trained bias;
- inputs: per-channel mean / std of the (first 5,000) training images, kept in the model
  as buffers, so the model takes the loop's [-1, 1] images like every other classifier;
- training: summed cross-entropy with label smoothing 0.2; Nesterov SGD, momentum 0.85,
  batch 1,024, lr 11.5 and weight decay 0.0153 per 1,024 examples, decoupled as in the
  paper (lr / (1024 (1 + 1 / (1 - momentum))) per summed example; weight decay
  wd * batch / that scale), BatchNorm biases at 64x the lr and the same decay; the
  "triangle" schedule (0.2 -> 1 at 23% of the steps -> 0.07); every 5 steps a lookahead
  step towards an exponential average of the weights (and BN statistics) with decay
  0.95^5 * (step / total)^3, the average being the final model; 10 epochs (the paper's
  9.9); alternating ("derandomised") horizontal flips and translations by up to 2 pixels
  with reflect padding. Unlike the paper's loader, the last, smaller batch of an epoch is
  kept (every image is seen every epoch, and the equal-steps accounting of the protocol
  metrics, `bench.metrics._protocol.steps_for`, holds for every classifier);
- test: logits averaged over the image, its mirror image and both translated by one
  pixel (`tta: 2`, `bench.classifiers.train.tta_logits`).

Every setting comes from `ClassifierConfig` (defaults in `AirbenchNet.recipe`, `RECIPE`),
so `classifier: {name: airbench, epochs: 20, tta: 0}` works as for any classifier. The
architecture takes `widths` and `batchnorm_momentum` as `args`. On CUDA the loop runs
under bf16 autocast with channels_last; `compile: true` compiles the training forward.
Data reach the device as in every classifier's loop (`train.TrainingData`: the whole uint8
set within `DEVICE_DATA_BUDGET`, else batch by batch from the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from bench.classifiers import CLASSIFIERS
from bench.classifiers.base import Classifier
from bench.classifiers.train import (
    ClassifierConfig,
    Recipe,
    TrainedClassifier,
    TrainingData,
    lr_schedule,
    run_epochs,
    to_float,
)
from bench.core.errors import BenchError

WIDTHS = (64, 256, 256)
BN_MOMENTUM = 0.6  # the paper's convention: running = 0.6 * running + 0.4 * batch
LOGIT_SCALE = 1 / 9
WHITEN_KERNEL = 2
WHITEN_EPS = 5e-4
WHITEN_IMAGES = 5000  # training images whose patches initialise the whitening layer
WHITEN_BIAS_EPOCHS = 3  # epochs during which the whitening layer's bias trains
BIAS_LR_SCALE = 64.0  # BatchNorm biases: lr x64 (weight decay unchanged)
LOOKAHEAD_EVERY = 5  # steps between lookahead (EMA) updates
MIN_SIZE = 16  # three 2x max-pools after the 2x2 valid conv need at least this

# the published hyperparameters (lr and weight decay per 1,024 examples, decoupled from
# batch size and momentum as in the paper; 10 epochs for its 9.9): `AirbenchNet.recipe`
RECIPE: dict[str, object] = dict(
    epochs=10, batch_size=1024, optimizer="sgd", lr=11.5, weight_decay=0.0153, momentum=0.85,
    schedule="triangle", label_smoothing=0.2, crop=2, flip="alternating", tta=2)


class _BatchNorm(nn.BatchNorm2d):
    """BatchNorm with a frozen weight of 1 and a trained bias (airbench)."""

    def __init__(self, num_features: int, momentum: float):
        super().__init__(num_features, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad_(False)


def _conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
    with torch.no_grad():  # identity on the first `cin` filters, default init elsewhere
        nn.init.dirac_(conv.weight[: min(cin, cout)])
    return conv


class _ConvGroup(nn.Module):
    def __init__(self, cin: int, cout: int, momentum: float):
        super().__init__()
        self.conv1 = _conv(cin, cout)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _BatchNorm(cout, momentum)
        self.conv2 = _conv(cout, cout)
        self.norm2 = _BatchNorm(cout, momentum)
        self.activ = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


@CLASSIFIERS.register("airbench")
class AirbenchNet(Classifier):
    """airbench (Jordan 2024): whitened 2x2 stem + 3 conv-BN-GELU blocks; its own fast recipe.

    airbench94's network for any channel count, class count and size >= 16 px (`image_size`
    None: not checked), with its recipe (`RECIPE`) and its trainer (`fit`)."""

    recipe = RECIPE
    mean: torch.Tensor  # per-channel statistics of the training images (buffers)
    std: torch.Tensor

    def __init__(self, in_chans: int, num_classes: int, image_size: int | None = None,
                 widths: Sequence[int] = WIDTHS, batchnorm_momentum: float = BN_MOMENTUM):
        if image_size is not None and image_size < MIN_SIZE:
            raise BenchError(f"classifier airbench: images of {image_size} px are too small (it "
                             f"needs at least {MIN_SIZE}); use small_cnn, or name: auto.")
        if len(widths) != 3:
            raise BenchError(f"classifier airbench args.widths: three block widths, got {list(widths)}")
        super().__init__()
        w1, w2, w3 = (int(v) for v in widths)
        whiten_width = 2 * in_chans * WHITEN_KERNEL**2
        self.register_buffer("mean", torch.zeros(in_chans))
        self.register_buffer("std", torch.ones(in_chans))
        self.whiten = nn.Conv2d(in_chans, whiten_width, WHITEN_KERNEL, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        if self.whiten.bias is not None:
            nn.init.zeros_(self.whiten.bias)
        self.activ = nn.GELU()
        self.blocks = nn.Sequential(_ConvGroup(whiten_width, w1, batchnorm_momentum),
                                    _ConvGroup(w1, w2, batchnorm_momentum),
                                    _ConvGroup(w2, w3, batchnorm_momentum))
        self.pool = nn.AdaptiveMaxPool2d(1)  # = the paper's MaxPool2d(3) on 32x32 inputs
        self.head = nn.Linear(w3, num_classes, bias=False)
        self.num_features = w3

    @classmethod
    def fit(cls, cfg: ClassifierConfig, s: Recipe, x: torch.Tensor, y: torch.Tensor,
            num_classes: int, device: torch.device, seed: int, desc: str = "train classifier",
            progress: bool = True) -> TrainedClassifier:
        """airbench trains with its own recipe (`train_airbench`), not the generic loop."""
        return train_airbench(cfg, s, x, y, num_classes, device, seed, desc, progress)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[:, None, None]) / self.std[:, None, None]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.whiten(self.normalize(x)))
        return self.pool(self.blocks(x)).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) * LOGIT_SCALE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def init_whitening(self, x: torch.Tensor, eps: float = WHITEN_EPS, chunk: int = 500) -> None:
        """Set the input statistics and the whitening filters from float images `x` in [-1, 1]
        (N, C, H, W): the filters are the eigenvectors of the covariance of all k x k patches
        of the normalised images, scaled by 1 / sqrt(eigenvalue + eps), and their negatives."""
        x = x.float()
        self.mean.copy_(x.mean(dim=(0, 2, 3)))
        self.std.copy_(x.std(dim=(0, 2, 3)).clamp_min(1e-6))
        cout, c, kh, kw = self.whiten.weight.shape
        d = c * kh * kw
        cov = torch.zeros(d, d, dtype=torch.float64, device=x.device)
        count = 0
        for i in range(0, x.shape[0], chunk):  # chunks: 5,000 64x64 images have 20M patches
            xb = self.normalize(x[i : i + chunk])
            patches = xb.unfold(2, kh, 1).unfold(3, kw, 1).transpose(1, 3).reshape(-1, d)
            cov += (patches.T @ patches).double()
            count += patches.shape[0]
        eigenvalues, eigenvectors = torch.linalg.eigh((cov / count).float())
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)  # largest first
        filters = (eigenvectors / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None])
        filters = filters.reshape(d, c, kh, kw)
        self.whiten.weight.copy_(torch.cat([filters, -filters]))


class Lookahead:
    """airbench's lookahead: an exponential average of the floating-point state (weights and
    BatchNorm statistics) that the model is pulled back onto at each update."""

    def __init__(self, model: nn.Module):
        self.state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self.ema = {k: v.detach().clone() for k, v in self.state.items()}

    @torch.no_grad()
    def update(self, decay: float) -> None:
        for k, v in self.state.items():
            self.ema[k].lerp_(v, 1 - decay)
            v.copy_(self.ema[k])


def param_groups(model: AirbenchNet, s: Recipe, batch_size: int) -> list[dict]:
    """SGD parameter groups with the paper's decoupled lr and weight decay."""
    kilostep = 1024 * (1 + 1 / (1 - s.momentum))
    lr = s.lr / kilostep  # per summed example
    wd = s.weight_decay * batch_size / kilostep
    bn = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    ids = {id(p) for p in bn}
    other = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    lr_bn = lr * BIAS_LR_SCALE
    return [dict(params=bn, lr=lr_bn, weight_decay=wd / lr_bn),
            dict(params=other, lr=lr, weight_decay=wd / lr)]


def train_airbench(cfg: ClassifierConfig, s: Recipe, x: torch.Tensor, y: torch.Tensor,
                   num_classes: int, device: torch.device, seed: int,
                   desc: str = "train classifier", progress: bool = True) -> TrainedClassifier:
    """The airbench recipe on uint8 images `x` (`AirbenchNet.fit`); `cfg` is resolved and
    `s` its settings."""
    if s.optimizer != "sgd" or s.schedule == "onecycle":
        raise BenchError("classifier airbench trains with Nesterov SGD and a per-step schedule "
                         "(triangle, cosine or constant): drop `optimizer` / `schedule: onecycle`.")
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    c, h, w = (int(v) for v in x.shape[1:])
    model = AirbenchNet(in_chans=c, num_classes=num_classes, image_size=min(h, w),
                        **cfg.args).to(device)
    data = TrainingData(x, y, device)  # whole on the device within its budget, else batches
    model.init_whitening(to_float(data.head(WHITEN_IMAGES)))
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if s.compile else model
    n = data.n
    bs = min(s.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    total = s.epochs * steps_per_epoch
    groups = param_groups(model, s, bs)
    opt = torch.optim.SGD(groups, momentum=s.momentum, nesterov=s.momentum > 0)
    sched = lr_schedule(opt, s.schedule, total, [g["lr"] for g in groups])
    lookahead = Lookahead(model)
    whiten_bias = model.whiten.bias
    assert whiten_bias is not None  # built with bias=True

    def on_epoch(epoch: int) -> None:  # the whitening layer's bias trains for a few epochs
        whiten_bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)

    def on_step(step: int) -> None:  # lookahead / EMA of the weights every few steps
        if step % LOOKAHEAD_EVERY == 0:
            lookahead.update(0.95**5 * (step / total) ** 3)

    model.train()
    step = run_epochs(forward, opt, sched, data, s, gen, device, desc, progress, reduction="sum",
                      on_epoch=on_epoch, on_step=on_step)
    if step >= LOOKAHEAD_EVERY:  # the average is the final model...
        lookahead.update(1.0)
    # ...unless no average was ever taken (fewer than LOOKAHEAD_EVERY steps): then it would
    # be the untrained initial weights, so the trained ones are kept
    model.eval()
    return TrainedClassifier(model, cfg, (c, h, w), num_classes)

