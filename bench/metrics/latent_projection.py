"""Latent projection (GAN inversion) as a memorisation test: does the generator reproduce its
training images better than held-out images of the same classes?

For `per_class` training images and as many held-out (val) images of every class, a code
is optimised to reconstruct the image, with the label fixed to the image's true class: the
best of `restarts` starting codes starts Adam (`steps`, `lr`, images in batches of
`batch_size`), and the best code seen is kept. `schedule: stylegan2` runs Adam as
StyleGAN2's projector does (rate ramped up over the first 5% of the steps and down over the
last 25%, code noise of `noise_factor` x the codes' spread fading out by 75%; with `lr: 0.1`,
`steps: 1000`, `space: w`, `loss: lpips`, `pixel_weight: 0` it is that projector, less its
per-layer noise-map optimisation, which would couple the images of a batch through the
synthesis network's shared noise buffers).

Where the code lives (`space`): `z`, the generator's input (starting codes drawn as the
generator draws them); or `w`, the output of its mapping network, for generators laid out as
StyleGAN2-ADA's (`mapping(z, c) -> w`, `synthesis(w) -> image`; Generator.map_latent /
render_w), as Karras et al.'s projector (StyleGAN2, Section 5) and the memorisation studies
that follow it project real images: one w per image (broadcast to every synthesis layer),
starting at the class's mean w over `w_avg_samples` mapped codes (`restarts` > 1 adds
restarts - 1 mapped random codes as other starts; `restarts: 1` is StyleGAN2's start).
`space: w` on a generator without those networks is refused by `bench validate`.

The reconstruction distance (`loss`):

    classifier: pixel_weight * pixel MSE (images in [-1, 1])
                + feature_weight * |f(x) - f(G(code, y))|^2,
      f the suite classifier's penultimate features, centred on the training-feature mean
      and unit-normalised (the space of nearest_neighbours);
    lpips:      pixel_weight * pixel MSE + feature_weight * LPIPS(x, G(code, y)),
      LPIPS on VGG16 (Zhang et al. 2018; bench.features.vgg16, shared with ppl) from local
      weights files (`lpips: {vgg16: PATH, lin: PATH}`, never downloaded); StyleGAN2's
      projector is `loss: lpips, pixel_weight: 0`;
    pixel:      pixel MSE alone.

The option `perceptual: {path, lpips, resize}` of version 1 still reads, as `loss: lpips`
with `lpips: {vgg16: path, lin: lpips, resize}`.

`projection_gap` = mean distance of held-out images - mean distance of training images:
about 0 for a generator that generalises (training images are new images to it too),
positive when training images are reproduced better (memorisation), negative when held-out
ones are (a generator that saw the val split). Its target is the held-out real row's value
in the suite (0 without one). A generator without gradients in z (`render_latent_grad`)
is projected by random search around the best code instead (run tag
`bench.projection_search = random`); so is one whose synthesis gives no gradient in w.

Artifacts: `latent_projection.png` (per class and split, the originals above their
projections, nearest projections first), `latent_projection.csv` (every image's distance)
and `latent_projection_map.png` (a 2-D UMAP, else t-SNE, map of the projected codes by
class, training vs held-out).

Intervals: normal approximations of the two means; the gap's variance adds theirs (the two
image sets are disjoint and projected independently).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from bench.classifiers.train import ClassifierConfig
from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.features.vgg16 import LPIPS, LPIPSOptions
from bench.infra.grids import labelled_grid
from bench.metrics import METRICS
from bench.metrics._intervals import mean_with_interval, normal_with_interval
from bench.metrics._protocol import figure, save_figure
from bench.metrics.base import Context, Metric
from bench.metrics.nearest_neighbours import NearestNeighbours
from bench.metrics.sampling import subset_by_counts
from bench.models.base import Generator
from bench.record.values import diagnostic, score

# a distance: (float images in [0, 255] (n, C, H, W), indices of their targets) -> (n,)
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

class LatentProjectionOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig,
                                         description="the suite classifier whose penultimate "
                                         "features measure the reconstruction")
    per_class: int = Field(5, ge=1, description="training and held-out images projected per class")
    steps: int = Field(200, ge=0, description="Adam steps on the codes per batch of images")
    lr: float = Field(0.05, gt=0, description="Adam learning rate on the codes (schedule "
                      "stylegan2: the peak rate; StyleGAN2's projector uses 0.1)")
    schedule: Literal["constant", "stylegan2"] = Field(
        "constant", description="constant: Adam at `lr` throughout; stylegan2: StyleGAN2's "
        "projector schedule (lr ramped up over the first 5% of steps, cosine ramp-down over the "
        "last 25%; Gaussian noise of noise_factor x the codes' spread added to the codes, "
        "decaying quadratically to 0 at 75% of the steps)")
    noise_factor: float = Field(0.05, ge=0, description="schedule stylegan2: the code noise at "
                                "step 0, times the codes' spread (StyleGAN2: 0.05 x w_std)")
    restarts: int = Field(16, ge=1, description="starting codes per image, the best starts Adam (z: random codes; w: the class's mean w and restarts - 1 mapped random codes)")
    batch_size: int = Field(64, ge=1, description="images projected together")
    space: Literal["z", "w"] = Field("z", description="z: the generator's input; w: its "
                                     "mapping network's output (StyleGAN2-ADA's mapping / "
                                     "synthesis), starting at the class's mean w")
    w_avg_samples: int = Field(10000, ge=1, description="space w: codes mapped per class for "
                               "the mean w (StyleGAN2's projector: 10,000)")
    loss: Literal["classifier", "pixel", "lpips"] = Field(
        "classifier", description="classifier: pixel MSE + the suite classifier's features; "
        "lpips: pixel MSE + LPIPS (VGG16, local weights in `lpips`); pixel: pixel MSE alone")
    lpips: LPIPSOptions | None = Field(None, description="loss lpips: {vgg16: PATH, lin: PATH, "
                                       "resize: 64}, local weights files")
    pixel_weight: float = Field(1.0, ge=0, description="weight of the pixel MSE (images in [-1, 1])")
    feature_weight: float = Field(1.0, ge=0, description="weight of the classifier / LPIPS distance")
    map_method: Literal["auto", "umap", "tsne"] = Field(
        "auto", description="2-D map of the codes: UMAP where umap-learn is installed, else t-SNE")
    grid_per_row: int = Field(5, ge=1, description="images per row of the projection grid")
    cell_pixels: int = Field(32, ge=8, description="upscale grid images to about this size")

    @model_validator(mode="before")
    @classmethod
    def _legacy_perceptual(cls, data: Any) -> Any:
        """`perceptual: {path, lpips, resize}` (version 1) is `loss: lpips` with
        `lpips: {vgg16: path, lin: lpips, resize}`."""
        if not isinstance(data, dict) or data.get("perceptual") is None:
            return data
        data = dict(data)
        p = data.pop("perceptual")
        if "lpips" in data or data.get("loss", "lpips") != "lpips":
            raise ValueError("`perceptual` is the old name of `loss: lpips` with `lpips: {vgg16: "
                             "PATH, lin: PATH}`: give one of them, not both.")
        if not isinstance(p, dict) or "path" not in p:
            raise ValueError("`perceptual` (old name) needs `path`; write `loss: lpips` and "
                             "`lpips: {vgg16: PATH, lin: PATH}` instead.")
        extra = set(p) - {"path", "lpips", "resize"}
        if extra:
            raise ValueError(f"`perceptual` (old name) has no option '{sorted(extra)[0]}'; write "
                             "`loss: lpips` and `lpips: {vgg16: PATH, lin: PATH, resize: N}`.")
        data["loss"] = "lpips"
        data["lpips"] = {"vgg16": p["path"], "lin": p.get("lpips"),
                         **({"resize": p["resize"]} if "resize" in p else {})}
        return data

    @model_validator(mode="after")
    def _lpips_weights(self) -> LatentProjectionOptions:
        if self.loss == "lpips" and self.lpips is None:
            raise ValueError("`loss: lpips` needs its weights: `lpips: {vgg16: PATH, lin: PATH}` "
                             "(a torchvision vgg16 state dict and the lpips package's "
                             "weights/v0.1/vgg.pth), or `loss: classifier` / `pixel`.")
        return self


# ---------------------------------------------------------------- distances
def classifier_distance(targets: torch.Tensor, embed: Callable[[torch.Tensor], torch.Tensor],
                        pixel_weight: float, feature_weight: float) -> Distance:
    """pixel MSE + squared distance of unit-normalised `embed` features, to `targets`."""
    t_px = targets.float() / 127.5 - 1
    with torch.no_grad():
        t_f = F.normalize(embed(t_px), dim=1) if feature_weight else None

    def dist(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        x = x / 127.5 - 1
        tx = t_px[idx].to(x.device)
        d = pixel_weight * ((x - tx) ** 2).flatten(1).mean(1)
        if t_f is not None:
            d = d + feature_weight * ((F.normalize(embed(x), dim=1) - t_f[idx].to(x.device)) ** 2).sum(1)
        return d

    return dist


def pixel_distance(targets: torch.Tensor) -> Distance:
    """Pixel MSE to `targets` (images in [-1, 1])."""
    t_px = targets.float() / 127.5 - 1

    def dist(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return ((x / 127.5 - 1 - t_px[idx].to(x.device)) ** 2).flatten(1).mean(1)

    return dist


def lpips_distance(targets: torch.Tensor, net: LPIPS, pixel_weight: float,
                   feature_weight: float) -> Distance:
    """pixel MSE + LPIPS to `targets` (the targets' VGG16 activations computed once)."""
    t_px = targets.float() / 127.5 - 1
    with torch.no_grad():
        t_f = net.layers(t_px)

    def dist(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        x = x / 127.5 - 1
        d = pixel_weight * ((x - t_px[idx].to(x.device)) ** 2).flatten(1).mean(1)
        if feature_weight:
            d = d + feature_weight * net(net.layers(x), [f[idx.to(f.device)] for f in t_f])
        return d

    return dist


# ---------------------------------------------------------------- projection
def draw_latents(generator: Generator, n: int, g: torch.Generator) -> torch.Tensor:
    """n codes drawn as the generator's own `sample` draws them."""
    z = torch.randn(n, int(generator.latent_dim or 0), generator=g)
    if getattr(generator, "latent_norm", "gaussian") == "unit":
        z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return z


@dataclass
class CodeSpace:
    """Where projection optimises codes, one (dim,) code per image: `z`, the generator's
    input; or `w`, its mapping network's output, one w broadcast to every synthesis layer
    when the mapping gives one per layer (StyleGAN's (n, num_ws, w_dim)). `scale` is the
    spread of the codes around their start (1 in z; StyleGAN2's w_std in w), the step of
    the random search."""

    generator: Generator
    space: Literal["z", "w"]
    dim: int
    w_avg: dict[int, torch.Tensor] | None = None  # class -> its mean w (dim,)
    num_ws: int | None = None
    scale: float = 1.0

    @classmethod
    def of(cls, generator: Generator, space: Literal["z", "w"], labels: torch.Tensor,
           w_avg_samples: int, seed: int) -> CodeSpace:
        """For `space: w`, each class's mean w over `w_avg_samples` mapped codes (from their
        own random stream, so the starting codes in z do not move)."""
        if space == "z":
            return cls(generator, "z", int(generator.latent_dim or 0))
        if not generator.has_mapping:
            raise BenchError(f"latent_projection space 'w' needs a generator with a mapping and a "
                             f"synthesis network (StyleGAN2-ADA's mapping(z, c) -> w and "
                             f"synthesis(w) -> image); {type(generator).__name__} has none: set "
                             "`space: z`.")
        out = cls(generator, "w", 0)
        g = torch.Generator().manual_seed(seed + 1)
        out.w_avg, var = {}, []
        for c in sorted(set(labels.tolist())):
            w = out.map(draw_latents(generator, w_avg_samples, g),
                        torch.full((w_avg_samples,), c, dtype=torch.long))
            out.w_avg[c] = w.mean(0)
            var.append(float(((w - w.mean(0)) ** 2).sum(1).mean()))
        out.dim = len(next(iter(out.w_avg.values()))) if out.w_avg else 0
        out.scale = math.sqrt(sum(var) / len(var)) if var else 1.0
        return out

    def map(self, z: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(n, dim) codes in w for z (the first layer's w where the mapping gives one per layer)."""
        outs = []
        with torch.no_grad():
            for i in range(0, len(z), chunk):
                w = self.generator.map_latent(z[i:i + chunk], y[i:i + chunk]).float()
                if w.ndim == 3:
                    self.num_ws = w.shape[1]
                    w = w[:, 0]
                outs.append(w.cpu())
        return torch.cat(outs)

    def starts(self, y: torch.Tensor, restarts: int, g: torch.Generator) -> torch.Tensor:
        """(restarts, m, dim) starting codes: in z, drawn as the generator draws them; in w, the
        class's mean w, then restarts - 1 mapped random codes."""
        m = len(y)
        if self.space == "z":
            return draw_latents(self.generator, m * restarts, g).view(restarts, m, -1)
        assert self.w_avg is not None
        first = torch.stack([self.w_avg[c] for c in y.tolist()]).unsqueeze(0) if m else \
            torch.zeros(1, 0, self.dim)
        if restarts == 1:
            return first
        more = self.map(draw_latents(self.generator, m * (restarts - 1), g), y.repeat(restarts - 1))
        return torch.cat([first, more.view(restarts - 1, m, -1)])

    def _w(self, c: torch.Tensor) -> torch.Tensor:
        return c.unsqueeze(1).expand(-1, self.num_ws, -1) if self.num_ws else c

    def render(self, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 255], no gradients."""
        with torch.no_grad():
            if self.space == "z":
                return self.generator.render_latent(c, y).float()
            return self.generator.render_w(self._w(c), y).float()

    def render_grad(self, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """`render` differentiable in the codes, or NotImplementedError (random search)."""
        if self.space == "z":
            return self.generator.render_latent_grad(c, y).float()
        x = self.generator.render_w(self._w(c), y).float()
        if not x.requires_grad:
            raise NotImplementedError(f"{type(self.generator).__name__}.render_w gives no "
                                      "gradient with respect to w")
        return x

    def images(self, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """uint8 images: what the generator outputs for the codes."""
        if self.space == "z":
            with torch.no_grad():
                return self.generator.sample_latent(c, y)
        return self.render(c, y).round().clamp(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class Schedule:
    """Adam's learning rate and the noise added to the codes at each step. `constant`: `lr`,
    no noise. `stylegan2`: the schedule of StyleGAN2's projector (Karras et al. 2020,
    stylegan2-ada-pytorch projector.py: lr_rampup_length 0.05, lr_rampdown_length 0.25,
    noise_ramp_length 0.75, initial_noise_factor 0.05): the noise lets the early steps
    explore, the ramps keep Adam's first steps and last steps small."""

    kind: Literal["constant", "stylegan2"] = "constant"
    lr: float = 0.05
    noise_factor: float = 0.05
    rampup: float = 0.05
    rampdown: float = 0.25
    noise_ramp: float = 0.75

    def at(self, step: int, steps: int) -> tuple[float, float]:
        """(learning rate, noise scale in units of the codes' spread) at `step` of `steps`."""
        if self.kind == "constant":
            return self.lr, 0.0
        t = step / max(1, steps)
        ramp = min(1.0, (1.0 - t) / self.rampdown)
        ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / self.rampup)
        return self.lr * ramp, self.noise_factor * max(0.0, 1.0 - t / self.noise_ramp) ** 2


def project(codes: CodeSpace, labels: torch.Tensor, dist: Distance, *, steps: int,
            lr: float, restarts: int, batch_size: int, seed: int,
            device: torch.device, schedule: Schedule | None = None) -> tuple[torch.Tensor, str]:
    """(best codes (n, dim), "adam" | "random"): codes that reconstruct the targets of
    `dist` (index i is target i), with `labels` fixed. `schedule` (default: constant at
    `lr`) sets Adam's rate and the code noise per step."""
    schedule = schedule or Schedule("constant", lr)
    g = torch.Generator().manual_seed(seed)
    n, out, how = len(labels), [], "adam"
    for s in range(0, n, batch_size):
        idx = torch.arange(s, min(n, s + batch_size))
        y = labels[idx]
        m = len(idx)
        # best of the starting codes (one forward pass each, no gradients)
        cand = codes.starts(y, restarts, g)
        with torch.no_grad():
            d = torch.stack([dist(codes.render(c, y), idx).cpu() for c in cand])
        best_d, j = d.min(0)
        best = cand[j, torch.arange(m)].clone()
        if how == "adam":
            try:
                best, best_d = _adam(codes, y, idx, dist, best, best_d, steps, schedule, g,
                                     device)
            except NotImplementedError:
                how = "random"
        if how == "random":
            best, best_d = _random_search(codes, y, idx, dist, best, best_d, steps, restarts, g)
        out.append(best)
    return torch.cat(out) if out else torch.zeros(0, codes.dim), how


def _adam(codes: CodeSpace, y: torch.Tensor, idx: torch.Tensor, dist: Distance,
          z0: torch.Tensor, best_d: torch.Tensor, steps: int, schedule: Schedule,
          g: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on the codes; the best code seen is the one rendered (noise included), so what
    is kept is always a code whose distance was measured."""
    best = z0.clone()
    z = z0.clone().to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=schedule.at(0, steps)[0])
    for step in range(steps):
        lr, noise = schedule.at(step, steps)
        for group in opt.param_groups:
            group["lr"] = lr
        eps = (noise * codes.scale * torch.randn(z.shape, generator=g)).to(device) if noise \
            else None
        with torch.enable_grad():
            c = z + eps if eps is not None else z
            d = dist(codes.render_grad(c, y), idx)
            grad, = torch.autograd.grad(d.sum(), z)  # per image: one code's own loss
        dc = d.detach().cpu()
        better = dc < best_d
        best[better], best_d[better] = c.detach().cpu()[better], dc[better]
        z.grad = grad
        opt.step()
    return best, best_d


def _random_search(codes: CodeSpace, y: torch.Tensor, idx: torch.Tensor, dist: Distance,
                   best: torch.Tensor, best_d: torch.Tensor, steps: int, restarts: int,
                   g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient-free: perturb the best code, keep improvements, the step shrinking from 1 to
    0.05 times the codes' scale (a (1 + restarts) evolution strategy over
    max(1, steps // 10) rounds)."""
    rounds = max(1, steps // 10)
    for r in range(rounds):
        sigma = codes.scale * 0.05 ** (r / max(1, rounds - 1))
        for _ in range(restarts):
            cand = best + sigma * torch.randn(best.shape, generator=g)
            d = dist(codes.render(cand, y), idx).cpu()
            better = d < best_d
            best[better], best_d[better] = cand[better], d[better]
    return best, best_d


@METRICS.register("latent_projection")
class LatentProjection(Metric[LatentProjectionOptions]):
    """Optimise z or w to reconstruct training vs held-out images: projection_gap > 0 = memorisation."""

    version = "1"
    needs_latent = True
    # gap: the held-out real row's value in the suite (0 without one): a generator that
    # generalises reproduces unseen images as well as its training images
    values = {"projection_gap": score("target", "memorisation", ref=True, target=0.0),
              "projection_train_distance": diagnostic("target",
                                                      fallback="projection_heldout_distance"),
              "projection_heldout_distance": diagnostic("lower")}
    primary = "projection_gap"
    needs_labels = True
    labels_for = "it projects real images into the generator with their class, in a classifier's features"
    needs_held_out = True  # its gap compares training with held-out (val) images

    def check(self) -> None:
        if self.options.loss == "lpips" and self.options.lpips is not None:
            self.options.lpips.check("lpips")

    def needs_mapping(self) -> str | None:
        return "it projects into w (`space: w`)" if self.options.space == "w" else None

    def distance(self, dataset: Dataset, targets: torch.Tensor, ctx: Context) -> Distance:
        o = self.options
        if o.loss == "pixel":
            ctx.tags["projection_distance"] = "pixel"
            return pixel_distance(targets.to(ctx.device))
        if o.loss == "lpips" and o.lpips is not None:
            net = LPIPS(o.lpips).to(ctx.device)
            ctx.tags["projection_distance"] = o.lpips.describe() + "+pixel"
            return lpips_distance(targets.to(ctx.device), net, o.pixel_weight, o.feature_weight)
        clf = ctx.real_classifier(dataset, o.classifier)
        _, mean = NearestNeighbours.train_features(ctx, dataset, clf)
        model, mean = clf.model.eval(), mean.to(ctx.device)

        def embed(x: torch.Tensor) -> torch.Tensor:
            return model.forward_features(x.to(ctx.device)).float() - mean

        ctx.tags["projection_distance"] = "classifier+pixel"
        return classifier_distance(targets.to(ctx.device), embed, o.pixel_weight, o.feature_weight)

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        if not generator.latent_dim:
            raise BenchError("latent_projection needs a generator that exposes its latent input "
                             "(latent_dim, sample_latent).")
        k = dataset.num_classes
        want = np.full(k, o.per_class)
        t_idx = subset_by_counts(dataset.train_y, np.minimum(want, dataset.class_counts("train")),
                                 ctx.seed)
        v_idx = subset_by_counts(dataset.val_y, np.minimum(want, dataset.class_counts("val")),
                                 ctx.seed)
        x = torch.cat([dataset.train_x[t_idx], dataset.val_x[v_idx]])
        y = torch.cat([dataset.train_y[t_idx], dataset.val_y[v_idx]])
        split = np.array(["train"] * len(t_idx) + ["held-out"] * len(v_idx))
        dist = self.distance(dataset, x, ctx)
        codes = CodeSpace.of(generator, o.space, y, o.w_avg_samples, ctx.seed)
        ctx.tags["projection_space"] = o.space
        z, how = project(codes, y, dist, steps=o.steps, lr=o.lr, restarts=o.restarts,
                         batch_size=o.batch_size, seed=ctx.seed, device=ctx.device,
                         schedule=Schedule(o.schedule, o.lr, o.noise_factor))
        ctx.tags["projection_search"] = how
        with torch.no_grad():  # what the generator outputs for the codes: uint8 images
            recon = torch.cat([codes.images(z[i:i + o.batch_size], y[i:i + o.batch_size]).cpu()
                               for i in range(0, len(z), o.batch_size)])
            d = torch.cat([dist(recon[i:i + o.batch_size].float().to(ctx.device),
                                torch.arange(i, min(len(z), i + o.batch_size))).cpu()
                           for i in range(0, len(z), o.batch_size)]).double().numpy()
        d_t, d_v = d[split == "train"], d[split == "held-out"]
        self._write(ctx, dataset, x, recon, y, split, d, np.concatenate([t_idx, v_idx]))
        self._map(ctx, dataset, z, y, split, o.map_method)
        se = math.sqrt(d_t.var(ddof=1) / len(d_t) + d_v.var(ddof=1) / len(d_v)) \
            if len(d_t) > 1 and len(d_v) > 1 else math.nan
        return {**mean_with_interval("projection_train_distance", d_t, lower=0.0),
                **mean_with_interval("projection_heldout_distance", d_v, lower=0.0),
                **normal_with_interval("projection_gap", float(d_v.mean() - d_t.mean()), se)}

    def _write(self, ctx: Context, dataset: Dataset, x: torch.Tensor, recon: torch.Tensor,
               y: torch.Tensor, split: np.ndarray, d: np.ndarray, index: np.ndarray) -> None:
        pd.DataFrame({"split": split, "index": index, "class": [dataset.class_names[c] for c in y.tolist()],
                      "distance": d}).to_csv(ctx.artifact("latent_projection.csv"), index=False,
                                             float_format="%.6g")
        rows, labels = [], []
        for c in range(dataset.num_classes):
            for s in ("train", "held-out"):
                sel = np.flatnonzero((y.numpy() == c) & (split == s))
                sel = sel[np.argsort(d[sel], kind="stable")][: self.options.grid_per_row]
                if len(sel) == 0:
                    continue
                rows += [x[sel], recon[sel]]
                labels += [f"{dataset.class_names[c]} {s}", "  projection"]
        if rows:
            labelled_grid(rows, labels, self.options.cell_pixels).save(
                ctx.artifact("latent_projection.png"))

    @staticmethod
    def _map(ctx: Context, dataset: Dataset, z: torch.Tensor, y: torch.Tensor, split: np.ndarray,
             method: str) -> None:
        pts = z.double().numpy()
        if len(pts) < 5:
            return
        if method != "tsne" and importlib.util.find_spec("umap") is not None:
            import umap

            xy = umap.UMAP(random_state=ctx.seed, n_neighbors=min(15, len(pts) - 1)).fit_transform(pts)
            name = "UMAP"
        else:
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, random_state=ctx.seed, init="pca",
                      perplexity=max(2.0, min(30.0, (len(pts) - 1) / 3))).fit_transform(pts)
            name = "t-SNE"
        ctx.tags["projection_map_method"] = name
        import matplotlib

        cmap = matplotlib.colormaps["tab10" if dataset.num_classes <= 10 else "tab20"]
        fig = figure(7.0, 6.0)
        ax = fig.add_subplot()
        yn = y.numpy()
        for c in range(dataset.num_classes):
            for s, marker in (("train", "o"), ("held-out", "x")):
                sel = (yn == c) & (split == s)
                if sel.any():
                    ax.scatter(xy[sel, 0], xy[sel, 1], s=18, color=cmap(c % cmap.N), marker=marker,
                               label=dataset.class_names[c] if s == "train" else None)
        ax.set_title(f"{name} of the projected latent codes\no training images   x held-out images")
        ax.legend(fontsize=7, markerscale=1.2, loc="best", ncol=2)
        save_figure(fig, ctx.artifact("latent_projection_map.png"))
