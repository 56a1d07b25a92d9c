"""VGG16 from a local state dict: the fc2 feature extractor of improved precision and recall,
and the LPIPS distance (Zhang et al., CVPR 2018) that latent projection and path length use.

One loader and one network definition (torchvision's `vgg16` architecture) serve both, so
the two metrics that measure a perceptual distance measure the same one. Weights are never
downloaded: a torchvision vgg16 state dict (e.g. torchvision's own `vgg16-397923af.pth`,
saved by `torch.save(vgg16(weights="IMAGENET1K_V1").state_dict(), path)` on a machine with
internet) and, for LPIPS, the lpips package's linear-layer file `weights/v0.1/vgg.pth`
(it ships inside the `lpips` wheel).

- `vgg16` feature extractor: images resized (bilinear, antialiased) to 224 and
  ImageNet-normalised, the 4096-d activations of the second fully connected layer after its
  ReLU (fc2), the features Kynkäänniemi et al. (2019) and StyleGAN2-ADA's precision/recall
  use.
- `LPIPS`: VGG16's relu1_2 ... relu5_3 activations of images in [-1, 1] (shifted and scaled by
  LPIPS's ScalingLayer), unit-normalised over channels, squared differences weighted per
  channel by the linear layers (`lin`), averaged over positions, summed over layers: the
  lpips package's `LPIPS(net='vgg')`. The learned heads (`lin`) are required: without them
  the distance (the package's `lpips=False` baseline, every channel weighing 1) is another
  measure, so it is refused rather than logged under LPIPS's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.features import FEATURES
from bench.features.base import FeatureExtractor, to_rgb
from bench.infra.cache import stable_hash
from bench.infra.store import FeatureNetworkKey

# relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of torchvision's vgg16().features: LPIPS's layers
LPIPS_LAYERS = (3, 8, 15, 22, 29)
# LPIPS's ScalingLayer: inputs in [-1, 1] shifted and scaled like ImageNet-normalised ones
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OBTAIN = ("Weights are never downloaded: on a machine with internet, save torchvision's ImageNet "
          "VGG16 with `torch.save(torchvision.models.vgg16(weights='IMAGENET1K_V1').state_dict(), "
          "'vgg16.pth')` (or copy ~/.cache/torch/hub/checkpoints/vgg16-397923af.pth) and give its path.")
OBTAIN_LIN = ("Give `lin: PATH` with the lpips package's weights/v0.1/vgg.pth: `pip install lpips`, "
              "then `python -c \"import lpips, os; print(os.path.join(os.path.dirname(lpips.__file__), "
              "'weights/v0.1/vgg.pth'))\"` prints the file (also in "
              "github.com/richzhang/PerceptualSimilarity).")


def load_state_dict(path: Path | str, what: str) -> dict[str, torch.Tensor]:
    """A state dict from a local file (`weights_only`), or a BenchError naming `what` (the
    option) and the file."""
    if not Path(path).is_file():
        raise BenchError(f"{what}: {path} does not exist. {OBTAIN}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file: say which and why
        first = str(e).splitlines()[0] if str(e) else ""
        raise BenchError(f"{what}: {path} cannot be read by torch.load ({type(e).__name__}: "
                         f"{first}). Save a state dict with torch.save(model.state_dict(), "
                         "path).") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise BenchError(f"{what}: {path} holds a {type(sd).__name__}, not a state dict.")
    return sd


def check_file(path: Path | str | None, what: str) -> None:
    """Validate-time check: the weights file exists (read only when a cell runs)."""
    if path is None or not Path(path).is_file():
        raise BenchError(f"{what}: {path} does not exist. {OBTAIN}")


def vgg16_network(path: Path | str, what: str, *, classifier: bool) -> Any:
    """torchvision's vgg16 with the weights of `path` (evaluation mode, no gradients in
    its weights). `classifier=False` needs only the convolutional `features` (a state dict of
    `features` alone, keys `0.weight`..., is accepted too)."""
    from torchvision.models import vgg16

    sd = load_state_dict(path, what)
    if not classifier and not any(k.startswith("features.") for k in sd):
        sd = {f"features.{k}": v for k, v in sd.items() if k.split(".")[0].isdigit()}
    net = vgg16(weights=None)
    want = [k for k in net.state_dict() if classifier or k.startswith("features.")]
    missing = [k for k in want if k not in sd]
    bad = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(net.state_dict()[k].shape)]
    if missing or bad:
        which = f"missing {', '.join(missing[:4])}" if missing else f"wrong shapes: {', '.join(bad[:4])}"
        raise BenchError(f"{what}: {path} is not a torchvision VGG16 state dict ({which}). "
                         "Give torch.save(torchvision.models.vgg16(...).state_dict(), path).")
    net.load_state_dict({k: sd[k] for k in want}, strict=False)
    return net.eval().requires_grad_(False)


# ---------------------------------------------------------------- LPIPS
class LPIPSOptions(Options):
    vgg16: Path = Field(description="VGG16 weights: a torchvision vgg16 state dict (or of its "
                        "`features` alone), a local file; never downloaded")
    lin: Path | None = Field(None, description="LPIPS linear-layer weights, required (the lpips "
                             "package's weights/v0.1/vgg.pth: lin0..lin4), a local file")
    resize: int | None = Field(64, ge=16, description="images are resized (bilinear) to this "
                               "side before VGG16; null: their own size")

    def check(self, where: str) -> None:
        check_file(self.vgg16, f"{where}.vgg16")
        if self.lin is None:
            raise BenchError(f"{where}.lin is missing: LPIPS needs its learned linear heads "
                             f"(without them it is another distance). {OBTAIN_LIN}")
        if not Path(self.lin).is_file():
            raise BenchError(f"{where}.lin: {self.lin} does not exist. {OBTAIN_LIN}")

    def describe(self) -> str:
        """How the distance is set up, for run tags."""
        return f"lpips-vgg16@{self.resize or 'native'}"


class LPIPS(nn.Module):
    """The LPIPS distance on VGG16 (see the module docstring). `layers(x)` gives the
    normalised activations of images in [-1, 1], `forward(a, b)` the distance of two such
    lists, `distance(x, y)` both at once; everything stays differentiable in the images."""

    def __init__(self, o: LPIPSOptions, where: str = "lpips"):
        super().__init__()
        net = vgg16_network(o.vgg16, f"{where}.vgg16", classifier=False)
        self.body = net.features[: LPIPS_LAYERS[-1] + 1]
        self.resize = o.resize
        if o.lin is None:
            raise BenchError(f"{where}.lin is missing: LPIPS needs its learned linear heads. "
                             f"{OBTAIN_LIN}")
        lsd = load_state_dict(o.lin, f"{where}.lin")
        try:
            self.lins = [lsd[f"lin{i}.model.1.weight"].float().flatten() for i in range(5)]
        except KeyError:
            raise BenchError(f"{where}.lin: {o.lin} has no lin0..lin4 weights "
                             "(`lin0.model.1.weight`...). Give the lpips package's "
                             "weights/v0.1/vgg.pth.") from None
        self.shift: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = to_rgb(x)[:, :3]
        if self.resize is not None and tuple(x.shape[-2:]) != (self.resize, self.resize):
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear",
                              align_corners=False)
        h, out = (x - self.shift) / self.scale, []
        for i, layer in enumerate(self.body):
            h = layer(h)
            if i in LPIPS_LAYERS:
                out.append(h / (h.norm(dim=1, keepdim=True) + 1e-10))  # lpips' normalize_tensor
        return out

    def forward(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        d = torch.zeros(a[0].shape[0], device=a[0].device)
        for i, (fa, fb) in enumerate(zip(a, b, strict=True)):
            sq = (fa - fb) ** 2
            w = self.lins[i].to(sq.device).view(1, -1, 1, 1)
            d = d + (sq * w).sum(1).mean((1, 2))
        return d

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(n,) LPIPS distances of image batches x and y in [-1, 1]."""
        return self(self.layers(x), self.layers(y))


# ---------------------------------------------------------------- fc2 features
class VGG16Options(Options):
    weights: Path = Field(description="torchvision vgg16 state dict (the whole network: fc2 "
                          "needs the classifier layers), a local file; never downloaded")
    image_size: int = Field(224, ge=32, description="resize to this side (bilinear, antialiased) "
                            "before the network; VGG16 was trained at 224")


@FEATURES.register("vgg16")
class VGG16Features(FeatureExtractor[VGG16Options]):
    """VGG16 fc2 activations after ReLU (4096-d), as in Kynkäänniemi et al. 2019; local weights."""

    cpu_batch_size = 8  # 224-299 px activations: see FeatureExtractor.cpu_batch_size

    def check(self) -> None:
        check_file(self.options.weights, "features.weights")

    def prepare(self, dataset: Any, env: Any) -> None:
        o = self.options
        self.check()

        def load() -> tuple[nn.Module, str]:
            net = vgg16_network(o.weights, "features.weights", classifier=True)
            # up to fc2's ReLU: Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU
            net.classifier = net.classifier[:5]
            digest = stable_hash(str(Path(o.weights).stat().st_mtime_ns), 8)
            return net.to(env.device), digest

        self.net, self.digest = env.store.get(FeatureNetworkKey(f"vgg16:{o.weights}"), load)
        self.mean = torch.tensor(IMAGENET_MEAN, device=env.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=env.device).view(1, 3, 1, 1)

    def tag(self) -> str:
        return (f"vgg16-fc2:{Path(self.options.weights).name}-{self.digest}:"
                f"bilinear-aa{self.options.image_size}")

    def _forward(self, x: torch.Tensor):
        x = to_rgb(x).float() / 255.0
        s = self.options.image_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return self.net((x - self.mean.to(x.device)) / self.std.to(x.device)), None
