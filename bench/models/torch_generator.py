"""A torch `nn.Module` generator as a bench Generator: shared by the `callable` and `mlflow`
model sources, which differ only in how they obtain the module.

The module is called as `forward(z, y)` (label indices or one-hot rows) or `forward(z)`;
its output range is declared, so the conversion to uint8 is exact rather than guessed.
Sampling is batched on the suite's device and seeded on the CPU, so the same seed gives
the same latents on every machine.

A module laid out as StyleGAN2-ADA's generator, with `mapping(z, c) -> w` and
`synthesis(w) -> image` submodules (c: the labels as `label_input` gives them to forward),
also exposes w (`Generator.map_latent` / `render_w`), for path length and projection in w;
the synthesis is called with `noise_mode='const'` where it takes that argument, as
StyleGAN2-ADA's projector does, so that one w always renders one image.

An unconditional module (`label_input: none`) is made class-conditional by pseudo-labels:
its samples are classified by the suite's real-trained classifier, and each requested
label is served from the samples classified as that class. The generator carries the tag
`pseudo_labels: true` so that a leaderboard never presents it as conditional.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.classifiers.train import ClassifierConfig
from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.infra import output_checks
from bench.models.base import BuildContext, Generator

LabelInput = Literal["index", "onehot", "none"]
OutputRange = Literal["[-1, 1]", "[0, 1]", "[0, 255]"]

# attribute names under which generators commonly store their latent size
LATENT_ATTRS = ("latent_dim", "z_dim", "nz", "dim_z", "latent_size", "noise_dim")


class TorchModelOptions(Options):
    """How to call a torch generator: what both torch-based model sources share."""

    latent_dim: int | None = Field(None, ge=1, description="size of z; default: the module's "
                                   f"{' / '.join(LATENT_ATTRS)} attribute (or the MLflow run's "
                                   "`latent_dim` param)")
    label_input: LabelInput = Field("index", description="how forward(z, y) gets labels: int64 "
                                    "indices, float one-hot rows, or none (unconditional: "
                                    "forward(z), labelled by the real-trained classifier)")
    output_range: OutputRange = Field("[-1, 1]", description="value range of the module's "
                                      "output images (tanh: [-1, 1])")
    batch_size: int = Field(256, ge=1, description="images per forward pass")
    pseudo_label_classifier: ClassifierConfig = Field(
        default_factory=ClassifierConfig, description="label_input none: the real-trained "
        "classifier that labels samples (the default is the metrics' default, so it is shared)")
    pseudo_label_rounds: int = Field(20, ge=1, description="label_input none: at most this many "
                                     "rounds of sampling to find every requested class")


def has_mapping_parts(net: object) -> bool:
    """StyleGAN2-ADA's generator layout: `net.mapping(z, c) -> w`, `net.synthesis(w) -> image`."""
    return callable(getattr(net, "mapping", None)) and callable(getattr(net, "synthesis", None))


def _takes_noise_mode(fn: object) -> bool:
    """Whether `fn` (a module or function) accepts `noise_mode=` (StyleGAN2-ADA's synthesis
    takes it through **block_kwargs)."""
    target = fn.forward if isinstance(fn, nn.Module) else fn
    try:
        params = inspect.signature(target).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return any(p.name == "noise_mode" or p.kind is p.VAR_KEYWORD for p in params)


def infer_latent_dim(net: nn.Module) -> int | None:
    for attr in LATENT_ATTRS:
        v = getattr(net, attr, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _to_255(x: torch.Tensor, output_range: OutputRange) -> torch.Tensor:
    x = x.float()
    if output_range == "[-1, 1]":
        x = (x + 1) * 127.5
    elif output_range == "[0, 1]":
        x = x * 255.0
    return x.clamp(0, 255)


def _round_seed(seed: int, r: int) -> int:
    return int(np.random.SeedSequence([seed, r]).generate_state(1, np.uint64)[0] >> 1)


class TorchGenerator(Generator):
    """Calls a torch module in batches on a device and returns uint8 (N, C, H, W)."""

    def __init__(self, net: nn.Module, *, image_shape: tuple[int, int, int], num_classes: int,
                 latent_dim: int, label_input: LabelInput, output_range: OutputRange,
                 batch_size: int, device: torch.device, tags: dict[str, str] | None = None):
        self.net = net.to(device).eval().requires_grad_(False)
        c, h, w = image_shape
        self.image_shape = (c, h, w)
        self.num_classes = num_classes
        self.latent_dim: int = latent_dim
        self.label_input = label_input
        self.output_range = output_range
        self.batch_size = batch_size
        self.device = device
        self.tags: dict[str, str] = dict(tags or {})
        p = next(net.parameters(), None)
        # a half-precision module needs half-precision latents
        self._dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32

    def _forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = z.to(self.device, self._dtype)
        try:
            if self.label_input == "none":
                return self.net(z)
            y = y.to(self.device, torch.long)
            if self.label_input == "onehot":
                return self.net(z, F.one_hot(y, self.num_classes).to(self._dtype))
            return self.net(z, y)
        except TypeError as e:  # forward() called with the wrong number of arguments
            raise BenchError(
                f"calling the generator module ({type(self.net).__name__}) with label_input "
                f"'{self.label_input}' failed: {e}. `index` and `onehot` call forward(z, y), "
                "`none` calls forward(z): set `label_input` to match its forward().") from None

    def _who(self) -> str:
        model = output_checks.checks_of(self).model
        call = "forward(z)" if self.label_input == "none" else "forward(z, y)"
        return f"{f'model {model!r}' if model else 'the generator module'} ({type(self.net).__name__}.{call})"

    @torch.no_grad()
    def render_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.render_latent_grad(z, labels)

    @property
    def has_mapping(self) -> bool:
        return has_mapping_parts(self.net)

    @property
    def _parts(self) -> Any:
        return self.net  # the module's own attributes (mapping, synthesis): untyped

    def _no_mapping(self) -> NotImplementedError:
        return NotImplementedError(
            f"the generator module ({type(self.net).__name__}) has no `mapping` and `synthesis` "
            "networks (StyleGAN2-ADA's layout: mapping(z, c) -> w, synthesis(w) -> image)")

    def map_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """w = net.mapping(z, c), c the labels as forward gets them (None: unconditional)."""
        if not self.has_mapping:
            raise self._no_mapping()
        mapping = self._parts.mapping
        outs = []
        for i in range(0, z.shape[0], self.batch_size):
            zb = z[i : i + self.batch_size].to(self.device, self._dtype)
            yb = labels[i : i + self.batch_size].to(self.device, torch.long)
            if self.label_input == "none":
                try:
                    outs.append(mapping(zb))
                except TypeError:  # StyleGAN2-ADA's mapping(z, c) with c_dim 0
                    outs.append(mapping(zb, None))
            elif self.label_input == "onehot":
                outs.append(mapping(zb, F.one_hot(yb, self.num_classes).to(self._dtype)))
            else:
                outs.append(mapping(zb, yb))
        return torch.cat(outs)

    def render_w(self, w: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 255] = net.synthesis(w) (noise_mode 'const' where it takes it);
        differentiable in w when called with gradients on (latent projection in w)."""
        if not self.has_mapping:
            raise self._no_mapping()
        synthesis = self._parts.synthesis
        kw = {"noise_mode": "const"} if _takes_noise_mode(synthesis) else {}
        outs = [_to_255(synthesis(w[i : i + self.batch_size].to(self.device, self._dtype), **kw),
                        self.output_range) for i in range(0, w.shape[0], self.batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0, *self.image_shape, device=self.device)

    def render_latent_grad(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._render(z, labels)

    def _render(self, z: torch.Tensor, labels: torch.Tensor,
                checks: output_checks.OutputChecks | None = None) -> torch.Tensor:
        """Float images in [0, 255]; with `checks`, each batch of the module's raw output is
        checked first (non-finite: an error; range statistics: bench.infra.output_checks)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (n, {self.latent_dim}), got {tuple(z.shape)}")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"labels must be in 0..{self.num_classes - 1}")
        outs = []
        for i in range(0, z.shape[0], self.batch_size):
            zb, yb = z[i : i + self.batch_size], labels[i : i + self.batch_size]
            # a numpy array works; a tuple, or another number of images, is said in one line
            raw = output_checks.generator_output(self._forward(zb, yb), len(zb),
                                                 None if self.label_input == "none" else yb,
                                                 self._who())
            raw = raw.to(self.device)
            if checks is not None:
                checks.floats(raw, self.output_range)
            outs.append(_to_255(raw, self.output_range))
        return torch.cat(outs) if outs else torch.zeros(0, *self.image_shape, device=self.device)

    def sample_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.render_latent(z, labels).round().to(torch.uint8)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """uint8 images; the module's float output is checked on the way (output_checks):
        the stream every metric sees is drawn through here. The latent-space paths
        (render_latent*, for path length and projection) are not: they feed the module
        latents of their own choosing."""
        if len(labels) != n:
            raise ValueError(f"{n} images requested with {len(labels)} labels")
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g)  # on the CPU: same z on every device
        checks = output_checks.checks_of(self)
        outs = [self._render(z[i : i + self.batch_size], labels[i : i + self.batch_size], checks)
                .round().to(torch.uint8).cpu() for i in range(0, n, self.batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0, *self.image_shape, dtype=torch.uint8)


class PseudoLabelGenerator(Generator):
    """An unconditional generator served class by class through a classifier's labels.

    For a request it samples rounds of images, classifies them, and keeps per class as
    many as were asked for; after `rounds` rounds a class with some images but too few
    reuses them (with a warning), and a class never produced is an error naming it.
    """

    def __init__(self, base: TorchGenerator, classify: Callable[[torch.Tensor], torch.Tensor],
                 model_name: str, class_names: list[str], rounds: int):
        self.base = base
        self.classify = classify
        self.model_name = model_name
        self.class_names = class_names
        self.rounds = rounds
        self.image_shape = base.image_shape
        self.num_classes = base.num_classes
        self.latent_dim = base.latent_dim
        self.tags = {**base.tags, "pseudo_labels": "true"}
        # one output record: the base's float batches are this generator's output
        setattr(self, output_checks.ATTR, output_checks.checks_of(base))

    def render_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The latent path ignores labels: an unconditional model has no label input."""
        return self.base.render_latent(z, torch.zeros(len(z), dtype=torch.long))

    @property
    def has_mapping(self) -> bool:
        return self.base.has_mapping

    def map_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.base.map_latent(z, torch.zeros(len(z), dtype=torch.long))

    def render_w(self, w: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.base.render_w(w, torch.zeros(len(w), dtype=torch.long))

    def sample_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.render_latent(z, labels).round().to(torch.uint8)

    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        labels = labels.cpu().long()
        if len(labels) != n:
            raise ValueError(f"{n} images requested with {len(labels)} labels")
        k = self.num_classes
        need = torch.bincount(labels, minlength=k)
        have = torch.zeros(k, dtype=torch.long)
        seen = torch.zeros(k, dtype=torch.long)  # everything classified, kept or not
        pools: list[list[torch.Tensor]] = [[] for _ in range(k)]
        round_size = max(n, self.base.batch_size)
        rounds = 0
        while rounds < self.rounds and bool((have < need).any()):
            x = self.base.sample(round_size, torch.zeros(round_size, dtype=torch.long),
                                 _round_seed(seed, rounds))
            pred = self.classify(x).cpu().long()
            seen += torch.bincount(pred, minlength=k)
            for c in torch.nonzero(have < need).flatten().tolist():
                idx = torch.nonzero(pred == c).flatten()[: int(need[c] - have[c])]
                if len(idx):
                    pools[c].append(x[idx])
                    have[c] += len(idx)
            rounds += 1
        never = [c for c in range(k) if need[c] > 0 and have[c] == 0]
        if never:
            counts = ", ".join(f"{self.class_names[c]}: {int(seen[c])}" for c in range(k))
            raise BenchError(
                f"model '{self.model_name}' is unconditional (label_input: none) and is labelled by "
                f"the real-trained classifier; in {rounds} round(s) of {round_size} samples it "
                f"never produced class(es) {[self.class_names[c] for c in never]} (samples per "
                f"class: {counts}). It cannot serve those classes: check that it was trained on "
                "this dataset, or raise `pseudo_label_rounds`.")
        short = [c for c in range(k) if 0 < have[c] < need[c]]
        if short:
            warnings.warn(f"model '{self.model_name}': after {rounds} rounds, too few samples of "
                          f"class(es) {[self.class_names[c] for c in short]} "
                          f"({[int(have[c]) for c in short]} for {[int(need[c]) for c in short]} "
                          "requested); they are repeated.", stacklevel=2)
        out = torch.empty((n, *self.image_shape), dtype=torch.uint8)
        for c in range(k):
            pos = torch.nonzero(labels == c).flatten()
            if len(pos):
                pool = torch.cat(pools[c])
                out[pos] = pool[torch.arange(len(pos)) % len(pool)]
        return out


def build_torch_generator(net: nn.Module, opts: TorchModelOptions, dataset: Dataset,
                          ctx: BuildContext, model_name: str, latent_dim: int | None = None,
                          tags: dict[str, str] | None = None) -> Generator:
    """Wrap `net` per the options; `latent_dim` is a fallback found by the source (e.g. an
    MLflow run parameter) when neither the options nor the module say it."""
    if not isinstance(net, nn.Module):
        raise BenchError(f"model '{model_name}' built a {type(net).__name__}, not a torch.nn.Module.")
    latent = opts.latent_dim or infer_latent_dim(net) or latent_dim
    if latent is None:
        raise BenchError(f"model '{model_name}': cannot tell the size of its latent input z. Set "
                         f"`latent_dim` in the suite (the module has none of the attributes "
                         f"{', '.join(LATENT_ATTRS)}).")
    gen = TorchGenerator(net, image_shape=dataset.image_shape, num_classes=dataset.num_classes,
                         latent_dim=latent, label_input=opts.label_input,
                         output_range=opts.output_range, batch_size=opts.batch_size,
                         device=ctx.device, tags=tags)
    output_checks.checks_of(gen).model = model_name
    if opts.label_input != "none":
        return gen

    from bench.classifiers.real import real_classifier
    from bench.classifiers.train import predict

    clf = real_classifier(dataset, opts.pseudo_label_classifier, ctx.device, ctx.seed, ctx.cache,
                          None, ctx.progress)

    def classify(x: torch.Tensor) -> torch.Tensor:
        return predict(clf, x, ctx.device).argmax(1)

    return PseudoLabelGenerator(gen, classify, model_name, dataset.class_names,
                                opts.pseudo_label_rounds)
