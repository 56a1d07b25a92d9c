"""Perceptual path length (Karras et al. 2019, StyleGAN, Section 4.1 and Tables 3-4): how
abruptly images change along short steps in latent space. Pairs of latents drawn as the
generator draws them; points at t and t + eps on the path between them (t ~ U(0, 1) for
`sampling: full`, t = 0 for `end`); distance of the two images in a perceptual feature
space / eps^2; the mean after dropping values outside the 1st-99th percentile, as StyleGAN
does.

Where the path runs (`space`): in z, the generator's input, by slerp; or in w, the output
of its mapping network (generators that implement `map_latent` / `render_w`), by lerp, as
the paper measures traditional generators in Z and style-based ones in W (`auto`: w where
the generator has a mapping network). The slerp stays in the generator's own latent
distribution (`Generator.latent_norm`): Karras et al. slerp unit vectors because StyleGAN
normalises z first thing, but a generator fed N(0, I) latents (|z| about sqrt(d), e.g. the
built-in GANs) has never seen a unit-norm z. For `gaussian` latents the directions are
slerped and the norms interpolated linearly, so every point has a typical norm; for `unit`
latents (drawn on the unit sphere) the plain slerp.

The distance (`distance`): `features`, the squared distance of unit-normalised features of
any extractor (default: the suite's real-trained classifier's penultimate features, which
work offline on any domain); or `lpips`, the LPIPS distance on VGG16 (Zhang et al. 2018,
bench.features.vgg16, the same implementation latent projection uses) from local weights
files (`lpips: {vgg16: PATH, lin: PATH}`), what Karras et al. use. StyleGAN's reported PPL
is LPIPS with epsilon 1e-4 over 100,000 pairs (images cropped to the face and downsampled
to 256 first); ours defaults to 1,000 pairs (`num_samples`) at `lpips.resize` 64, so it is
comparable between models of one suite, not with published numbers, unless set to theirs.

Interval: normal approximation of the mean of the kept per-pair distances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.features.base import FeatureSpec
from bench.features.vgg16 import LPIPS, LPIPSOptions
from bench.metrics import METRICS
from bench.metrics._intervals import mean_with_interval
from bench.metrics.base import Context, Metric
from bench.models.base import Generator
from bench.record.values import score

Space = Literal["auto", "z", "w"]
Interpolation = Literal["auto", "slerp", "lerp"]


class PPLOptions(Options):
    num_samples: int = Field(1000, ge=10, description="pairs of latents (StyleGAN: 100,000)")
    epsilon: float = Field(1e-4, gt=0, description="step along the path (StyleGAN: 1e-4)")
    space: Space = Field("auto", description="z: the generator's input latent; w: the output of "
                         "its mapping network (map_latent/render_w); auto: w where it has one")
    interpolation: Interpolation = Field("auto", description="auto: slerp in z (within the "
                                         "generator's latent_norm), lerp in w (Karras et al.)")
    sampling: Literal["full", "end"] = Field("full", description="full: t ~ U(0, 1); end: t = 0 "
                                             "(the paper's 'end' path length)")
    distance: Literal["features", "lpips"] = Field(
        "features", description="features: squared distance of unit-normalised `features`; "
        "lpips: LPIPS on VGG16 from the local weights in `lpips` (StyleGAN's choice)")
    features: FeatureSpec = Field(default_factory=lambda: FeatureSpec(name="classifier"),
                                  description="distance features: the extractor")
    lpips: LPIPSOptions | None = Field(None, description="distance lpips: {vgg16: PATH, lin: "
                                       "PATH, resize: 64}, local weights files")
    batch_size: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _lpips_weights(self) -> PPLOptions:
        if self.distance == "lpips" and self.lpips is None:
            raise ValueError("`distance: lpips` needs its weights: `lpips: {vgg16: PATH, lin: "
                             "PATH}` (a torchvision vgg16 state dict and the lpips package's "
                             "weights/v0.1/vgg.pth), or `distance: features`.")
        return self

    @model_validator(mode="before")
    @classmethod
    def _legacy_space(cls, data: Any) -> Any:
        """`space: slerp | lerp` (versions 1-2) named the interpolation, in z."""
        if isinstance(data, dict) and data.get("space") in ("slerp", "lerp"):
            data = {**data, "space": "z", "interpolation": data["space"]}
        return data


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of a and b: unit vectors."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    d = (a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = b_n - d * a_n
    c = c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # a parallel to b: c = 0, sin(p) = 0
    return a_n * torch.cos(p) + c * torch.sin(p)


def slerp_norms(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Slerp of the directions with the norms interpolated linearly: a at t = 0, b at t = 1,
    and a norm between |a| and |b| in between (the unit slerp of N(0, I) latents would leave
    the shell of radius about sqrt(d) where they live)."""
    r = torch.lerp(a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True), t)
    return r * slerp(a, b, t)


def interpolate(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor,
                interpolation: Literal["slerp", "lerp"], latent_norm: str = "gaussian") -> torch.Tensor:
    if interpolation == "lerp":
        return torch.lerp(a, b, t)
    return slerp(a, b, t) if latent_norm == "unit" else slerp_norms(a, b, t)


def resolve_path(generator: Generator, space: Space, interpolation: Interpolation
                 ) -> tuple[Literal["z", "w"], Literal["slerp", "lerp"]]:
    """(space, interpolation) for this generator: `auto` space is w where it has a mapping
    network, else z; `auto` interpolation is slerp in z and lerp in w."""
    has_w = generator.has_mapping
    if space == "w" and not has_w:
        raise BenchError(f"ppl space 'w' needs a generator with a mapping network (map_latent and "
                         f"render_w); {type(generator).__name__} has none: use space 'z' or 'auto'.")
    s: Literal["z", "w"] = ("w" if has_w else "z") if space == "auto" else space
    i: Literal["slerp", "lerp"] = ("lerp" if s == "w" else "slerp") if interpolation == "auto" else interpolation
    return s, i


def path_lengths(generator: Generator, embed: Callable[[torch.Tensor], torch.Tensor],
                 num_classes: int, *, num_samples: int = 1000, epsilon: float = 1e-4,
                 space: Space = "auto", interpolation: Interpolation = "auto",
                 sampling: Literal["full", "end"] = "full", batch_size: int = 256,
                 seed: int = 0,
                 distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 ) -> np.ndarray:
    """Per-pair path lengths |f(x(t)) - f(x(t + eps))|^2 / eps^2, with f = `embed` (float
    images in [0, 255] -> features, compared unit-normalised); or, given `distance` (two
    batches of float images in [0, 255] -> (n,) distances, e.g. LPIPS), distance / eps^2.
    Latents are drawn as the generator draws them (`latent_norm`), on the CPU from `seed`,
    so every device sees the same pairs."""
    s, how = resolve_path(generator, space, interpolation)
    d = generator.latent_dim
    if d is None:
        raise BenchError(f"{type(generator).__name__} does not say its latent size (latent_dim)")
    unit = generator.latent_norm == "unit"
    g = torch.Generator().manual_seed(seed)
    dists = []
    for i in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - i)
        z0 = torch.randn(n, d, generator=g)
        z1 = torch.randn(n, d, generator=g)
        if unit:
            z0, z1 = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
        t = torch.rand(n, 1, generator=g) * (1.0 if sampling == "full" else 0.0)
        labels = torch.randint(0, num_classes, (n,), generator=g)
        with torch.no_grad():
            if s == "w":
                w0, w1 = generator.map_latent(z0, labels), generator.map_latent(z1, labels)
                tw = t.to(w0.device, w0.dtype).view(n, *([1] * (w0.ndim - 1)))  # (n, [layers,] dim)
                wa, wb = interpolate(w0, w1, tw, how), interpolate(w0, w1, tw + epsilon, how)
                imgs = generator.render_w(torch.cat([wa, wb]), torch.cat([labels, labels]))
            else:
                za, zb = (interpolate(z0, z1, t, how, generator.latent_norm),
                          interpolate(z0, z1, t + epsilon, how, generator.latent_norm))
                imgs = generator.render_latent(torch.cat([za, zb]), torch.cat([labels, labels]))
            if distance is not None:
                dists.append(distance(imgs[:n], imgs[n:]).float().cpu() / epsilon**2)
                continue
            f = torch.nn.functional.normalize(embed(imgs).float().flatten(1), dim=1)
        dists.append(((f[:n] - f[n:]) ** 2).sum(1).cpu() / epsilon**2)
    return torch.cat(dists).double().numpy()


def trimmed(d: np.ndarray) -> np.ndarray:
    """The path lengths within the 1st-99th percentiles (StyleGAN's filter)."""
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    return d[(d >= lo) & (d <= hi)]


@METRICS.register("ppl")
class PPL(Metric[PPLOptions]):
    """Perceptual path length in latent space (lower = smoother); needs latent access."""

    # 2: normal 95% interval; 3: paths in the generator's own latent distribution (norms
    # interpolated along the slerp, not unit vectors), w space for mapping networks, `end`
    version = "3"
    needs_latent = True
    values = {"ppl": score("lower", "quality")}
    primary = "ppl"

    def check(self) -> None:
        if self.options.distance == "lpips" and self.options.lpips is not None:
            self.options.lpips.check("lpips")
        elif self.options.distance == "features":
            self.options.features.build().check()

    def label_need(self) -> str | None:
        if self.options.distance == "lpips":  # the features (and their classifier) are unused
            return None
        return super().label_need()

    def needs_mapping(self) -> str | None:
        return "its path runs in w (`space: w`)" if self.options.space == "w" else None

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        space, how = resolve_path(generator, o.space, o.interpolation)
        ctx.tags["ppl_path"] = (f"{space} {how}" + (f" ({generator.latent_norm} z)" if space == "z" else "")
                                + f", {o.sampling}")
        embed: Callable[[torch.Tensor], torch.Tensor]
        distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        if o.distance == "lpips" and o.lpips is not None:
            net = LPIPS(o.lpips).to(ctx.device)
            ctx.tags["ppl_distance"] = o.lpips.describe()

            def embed(imgs: torch.Tensor) -> torch.Tensor:  # unused: `distance` is given
                raise AssertionError

            def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
                return net.distance(a.to(ctx.device) / 127.5 - 1, b.to(ctx.device) / 127.5 - 1)
        else:
            ex = ctx.extractor(o.features, dataset)
            ctx.tags["ppl_distance"] = f"features {ex.tag()}"

            def embed(imgs: torch.Tensor) -> torch.Tensor:
                return ex._forward(imgs.to(ctx.device))[0]

        d = path_lengths(generator, embed, dataset.num_classes, num_samples=o.num_samples,
                         epsilon=o.epsilon, space=space, interpolation=how, sampling=o.sampling,
                         batch_size=o.batch_size, seed=ctx.seed, distance=distance)
        kept = trimmed(d)
        return mean_with_interval("ppl", kept, float(kept.mean()), lower=0.0)
