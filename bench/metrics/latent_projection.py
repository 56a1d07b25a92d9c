"""Latent projection (GAN inversion) as a memorisation test: does the generator reproduce its
training images better than held-out images of the same classes?

For `per_class` training images and as many held-out (val) images of every class, the
latent code z is optimised to reconstruct the image, with the label fixed to the image's
true class: the best of `restarts` random codes (drawn as the generator draws them) starts
Adam (`steps`, `lr`, images in batches of `batch_size`), and the best code seen is kept. The
reconstruction distance is

    pixel_weight * pixel MSE (images in [-1, 1])
    + feature_weight * |f(x) - f(G(z, y))|^2,

with f the suite classifier's penultimate features, centred on the training-feature mean
and unit-normalised (the space of nearest_neighbours); or, with `perceptual: {path: ...}`,
VGG16 features (LPIPS layers, unit-normalised per channel; weighted by LPIPS's linear
layers where `perceptual.lpips` gives them), from local files only (never downloaded).

`projection_gap` = mean distance of held-out images - mean distance of training images:
about 0 for a generator that generalises (training images are new images to it too),
positive when training images are reproduced better (memorisation), negative when held-out
ones are (a generator that saw the val split). Its target is the held-out real row's value
in the suite (0 without one). A generator without gradients in z (`render_latent_grad`)
is projected by random search around the best code instead (run tag
`bench.projection_search = random`).

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
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.classifiers.train import ClassifierConfig
from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._intervals import mean_with_interval, normal_with_interval
from bench.metrics._protocol import figure, save_figure
from bench.metrics.base import Context, Metric
from bench.metrics.nearest_neighbours import NearestNeighbours
from bench.metrics.sampling import subset_by_counts
from bench.models.base import Generator
from bench.record.values import diagnostic, score
from bench.report.grids import labelled_grid

# a distance: (float images in [0, 255] (n, C, H, W), indices of their targets) -> (n,)
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of torchvision's vgg16().features: LPIPS's layers
VGG_LAYERS = (3, 8, 15, 22, 29)
# LPIPS's ScalingLayer: inputs in [-1, 1] shifted and scaled like ImageNet-normalised ones
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class PerceptualOptions(Options):
    path: Path = Field(description="VGG16 weights: a torchvision vgg16 state dict (or of its "
                       "`features` alone), a local file; never downloaded")
    lpips: Path | None = Field(None, description="LPIPS linear-layer weights (the lpips "
                               "package's weights/v0.1/vgg.pth: lin0..lin4); without them the "
                               "channels are weighted equally")
    resize: int = Field(64, ge=16, description="images are resized (bilinear) to this side "
                        "before VGG16")


class LatentProjectionOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig,
                                         description="the suite classifier whose penultimate "
                                         "features measure the reconstruction")
    per_class: int = Field(5, ge=1, description="training and held-out images projected per class")
    steps: int = Field(200, ge=0, description="Adam steps on z per batch of images")
    lr: float = Field(0.05, gt=0, description="Adam learning rate on z")
    restarts: int = Field(16, ge=1, description="random codes per image; the best starts Adam")
    batch_size: int = Field(64, ge=1, description="images projected together")
    pixel_weight: float = Field(1.0, ge=0, description="weight of the pixel MSE (images in [-1, 1])")
    feature_weight: float = Field(1.0, ge=0, description="weight of the perceptual distance")
    perceptual: PerceptualOptions | None = Field(None, description="VGG16 / LPIPS weights from "
                                                 "local files instead of the suite classifier")
    map_method: Literal["auto", "umap", "tsne"] = Field(
        "auto", description="2-D map of the codes: UMAP where umap-learn is installed, else t-SNE")
    grid_per_row: int = Field(5, ge=1, description="images per row of the projection grid")
    cell_pixels: int = Field(32, ge=8, description="upscale grid images to about this size")


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


class VGGDistance(nn.Module):
    """LPIPS-style distance on VGG16 features (Zhang et al. 2018): per layer, channels
    unit-normalised, squared differences weighted by the linear layers (or equally),
    averaged over positions, summed over layers. Images in [-1, 1]."""

    def __init__(self, o: PerceptualOptions):
        super().__init__()
        from torchvision.models import vgg16

        sd = load_weights(o.path, "perceptual.path")
        feats = {k.removeprefix("features."): v for k, v in sd.items()
                 if k.startswith("features.") or k.split(".")[0].isdigit()}
        body = vgg16(weights=None).features[: VGG_LAYERS[-1] + 1]
        missing = [k for k in body.state_dict() if k not in feats]
        if missing:
            raise BenchError(f"perceptual.path {o.path}: not VGG16 weights (missing "
                             f"{', '.join(missing[:4])}). Give a torchvision vgg16 state dict "
                             "(torch.save(vgg16(...).state_dict(), path)) or of its `features`.")
        body.load_state_dict({k: feats[k] for k in body.state_dict()})
        self.body = body.eval().requires_grad_(False)
        self.resize = o.resize
        self.lins: list[torch.Tensor] | None = None
        if o.lpips is not None:
            lsd = load_weights(o.lpips, "perceptual.lpips")
            try:
                self.lins = [lsd[f"lin{i}.model.1.weight"].float().flatten() for i in range(5)]
            except KeyError:
                raise BenchError(f"perceptual.lpips {o.lpips}: no lin0..lin4 weights "
                                 "(`lin0.model.1.weight`...). Give the lpips package's "
                                 "weights/v0.1/vgg.pth.") from None
        self.shift: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x[:, :3], size=(self.resize, self.resize), mode="bilinear",
                          align_corners=False)
        h, out = (x - self.shift) / self.scale, []
        for i, layer in enumerate(self.body):
            h = layer(h)
            if i in VGG_LAYERS:
                out.append(h / (h.norm(dim=1, keepdim=True) + 1e-10))
        return out

    def forward(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        d = torch.zeros(a[0].shape[0], device=a[0].device)
        for i, (fa, fb) in enumerate(zip(a, b, strict=True)):
            sq = (fa - fb) ** 2
            w = self.lins[i].to(sq.device).view(1, -1, 1, 1) if self.lins is not None else 1.0
            d = d + (sq * w).sum(1).mean((1, 2))
        return d


def load_weights(path: Path, what: str) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise BenchError(f"{what} {path} does not exist. Weights are never downloaded: put the "
                         "file there, or leave `perceptual` out to use the suite classifier.")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file: say which and why
        raise BenchError(f"{what} {path} cannot be read by torch.load ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}). Save a state dict with "
                         "torch.save(model.state_dict(), path).") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise BenchError(f"{what} {path} holds a {type(sd).__name__}, not a state dict.")
    return sd


def vgg_distance(targets: torch.Tensor, net: VGGDistance, pixel_weight: float,
                 feature_weight: float) -> Distance:
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


def project(generator: Generator, labels: torch.Tensor, dist: Distance, *, steps: int,
            lr: float, restarts: int, batch_size: int, seed: int,
            device: torch.device) -> tuple[torch.Tensor, str]:
    """(best codes (n, latent_dim), "adam" | "random"): codes that reconstruct the targets
    of `dist` (index i is target i), with `labels` fixed."""
    g = torch.Generator().manual_seed(seed)
    n, out, how = len(labels), [], "adam"
    for s in range(0, n, batch_size):
        idx = torch.arange(s, min(n, s + batch_size))
        y = labels[idx]
        m = len(idx)
        # best of `restarts` random codes (one forward pass each, no gradients)
        cand = draw_latents(generator, m * restarts, g).view(restarts, m, -1)
        with torch.no_grad():
            d = torch.stack([dist(generator.render_latent(c, y).float(), idx).cpu() for c in cand])
        best_d, j = d.min(0)
        best = cand[j, torch.arange(m)].clone()
        if how == "adam":
            try:
                best, best_d = _adam(generator, y, idx, dist, best, best_d, steps, lr, device)
            except NotImplementedError:
                how = "random"
        if how == "random":
            best, best_d = _random_search(generator, y, idx, dist, best, best_d, steps, restarts, g)
        out.append(best)
    return torch.cat(out) if out else torch.zeros(0, int(generator.latent_dim or 0)), how


def _adam(generator: Generator, y: torch.Tensor, idx: torch.Tensor, dist: Distance,
          z0: torch.Tensor, best_d: torch.Tensor, steps: int, lr: float,
          device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    best = z0.clone()
    z = z0.clone().to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            d = dist(generator.render_latent_grad(z, y).float(), idx)
            grad, = torch.autograd.grad(d.sum(), z)  # per image: one code's own loss
        dc = d.detach().cpu()
        better = dc < best_d
        best[better], best_d[better] = z.detach().cpu()[better], dc[better]
        z.grad = grad
        opt.step()
    return best, best_d


def _random_search(generator: Generator, y: torch.Tensor, idx: torch.Tensor, dist: Distance,
                   best: torch.Tensor, best_d: torch.Tensor, steps: int, restarts: int,
                   g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient-free: perturb the best code, keep improvements, the step shrinking from 1 to
    0.05 (a (1 + restarts) evolution strategy over max(1, steps // 10) rounds)."""
    rounds = max(1, steps // 10)
    for r in range(rounds):
        sigma = 0.05 ** (r / max(1, rounds - 1))
        for _ in range(restarts):
            cand = best + sigma * torch.randn(best.shape, generator=g)
            with torch.no_grad():
                d = dist(generator.render_latent(cand, y).float(), idx).cpu()
            better = d < best_d
            best[better], best_d[better] = cand[better], d[better]
    return best, best_d


@METRICS.register("latent_projection")
class LatentProjection(Metric):
    """Optimise z to reconstruct training vs held-out images: projection_gap > 0 = memorisation."""

    Options = LatentProjectionOptions
    options: LatentProjectionOptions
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
        p = self.options.perceptual
        if p is None:
            return
        for what, path in (("perceptual.path", p.path), ("perceptual.lpips", p.lpips)):
            if path is not None and not Path(path).is_file():
                raise BenchError(f"latent_projection {what}: {path} does not exist. Weights are "
                                 "never downloaded: put the file there, or leave `perceptual` "
                                 "out to use the suite classifier's features.")

    def distance(self, dataset: Dataset, targets: torch.Tensor, ctx: Context) -> Distance:
        o = self.options
        if o.perceptual is not None:
            net = VGGDistance(o.perceptual).to(ctx.device)
            ctx.tags["projection_distance"] = ("lpips" if o.perceptual.lpips else "vgg16") + "+pixel"
            return vgg_distance(targets.to(ctx.device), net, o.pixel_weight, o.feature_weight)
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
        z, how = project(generator, y, dist, steps=o.steps, lr=o.lr, restarts=o.restarts,
                         batch_size=o.batch_size, seed=ctx.seed, device=ctx.device)
        ctx.tags["projection_search"] = how
        with torch.no_grad():  # what the generator outputs for the codes: uint8 images
            recon = torch.cat([generator.sample_latent(z[i:i + o.batch_size], y[i:i + o.batch_size]).cpu()
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
