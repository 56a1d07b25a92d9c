"""timm architectures as classifiers: any timm model by name, plus named entries.

`classifier: {name: timm, args: {model: convnext_atto}}` builds any timm model;
`resnet18`, `wide_resnet50_2`, `vit_tiny_patch16_224`, `preact_resnet18` (timm's
`resnetv2_18`) and the CIFAR ResNets `resnet20` / `resnet32` (He et al. 2016, the kind of
network the GAN-train/GAN-test protocol uses on CIFAR-sized images) are registered by name.

Why the adaptations: ImageNet stems (7x7 stride-2 conv + max-pool) shrink an 8x8 digit
to 2x2 before the first block, so for images of at most 64 pixels the stem becomes a 3x3
stride-1 conv without max-pool; ViTs get `img_size` and a patch size that divides the
image. Weights are never downloaded: `pretrained_file` names a local state dict that timm
loads (`weights_only`) through `pretrained_cfg_overlay=dict(file=...)`.

timm is imported inside the constructors so that listing classifiers stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from bench.classifiers import CLASSIFIERS
from bench.classifiers.base import Classifier
from bench.core.errors import BenchError
from bench.core.registry import did_you_mean

if TYPE_CHECKING:  # timm is imported inside the constructors
    from timm.models.resnet import ResNet

SMALL_INPUT = 64  # images at most this size get the small-image stem


def _vit_patch_size(image_size: int) -> int:
    """Largest of 16, 8, 4, 2 that divides the image and leaves at least an 8x8 token grid
    (1 for tiny images): 224 -> 16, 64 -> 8, 32 -> 4, 8 -> 1."""
    for p in (16, 8, 4, 2):
        if image_size % p == 0 and image_size // p >= 8:
            return p
    return 1


def _small_stem(net: nn.Module, keep_weights: bool) -> None:
    """Stride-1 stem without max-pool for ResNet-like timm models (resnet, resnetv2, deep
    stems included): a 7x7 stem conv becomes a fresh 3x3 stride-1 conv, other strided stem
    convs get stride 1. With pretrained weights every loaded kernel is kept and only its
    stride set to 1, so the weights the user supplied are not thrown away.
    """
    root = "conv1" if isinstance(getattr(net, "conv1", None), nn.Module) else "stem"
    stem = getattr(net, root, None)
    strided = [(n, m) for n, m in stem.named_modules()
               if isinstance(m, nn.Conv2d) and m.stride != (1, 1)] if stem is not None else []
    if not strided:
        raise BenchError("classifier: no strided stem conv (conv1 or stem) to adapt to small "
                         "images in this timm model; pass `small_input: false`.")
    for name, conv in strided:
        if type(conv) is nn.Conv2d and conv.kernel_size[0] > 3 and not keep_weights:
            new = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)
            net.set_submodule(f"{root}.{name}" if name else root, new)
        else:
            conv.stride = (1, 1)
            conv.padding = (conv.kernel_size[0] // 2, conv.kernel_size[1] // 2)
    if isinstance(getattr(net, "maxpool", None), nn.Module):
        net.maxpool = nn.Identity()
    if stem is not None and isinstance(getattr(stem, "pool", None), nn.Module):
        stem.pool = nn.Identity()


def _timm_module(model: str) -> str:
    import timm.models

    return timm.models.model_entrypoint(model).__module__.rsplit(".", 1)[-1]


def build_timm_net(in_chans: int, num_classes: int, image_size: int, model: str = "resnet18",
                   pretrained_file: str | None = None, small_input: bool | None = None,
                   **kwargs: Any) -> nn.Module:
    """The timm model `model`, adapted to the data's channels, classes and size.

    in_chans and num_classes come from the dataset; ResNet stems are adapted to small
    images, ViTs get img_size and a dividing patch size; other args go to
    `timm.create_model`."""
    import timm

    if not timm.is_model(model):
        names = timm.list_models()
        raise BenchError(f"classifier args.model: unknown timm model '{model}'."
                         f"{did_you_mean(model, names)} See timm.list_models().")
    family = _timm_module(model)
    if family == "vision_transformer":
        kwargs.setdefault("img_size", image_size)
        kwargs.setdefault("patch_size", _vit_patch_size(image_size))
    load: dict[str, Any] = {"pretrained": False}
    if pretrained_file is not None:
        path = Path(pretrained_file).expanduser()
        if not path.is_file():
            raise BenchError(f"classifier args.pretrained_file: {path} not found. Give the path "
                             "of a local state dict for the timm model (nothing is downloaded).")
        load = {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    net = timm.create_model(model, num_classes=num_classes, in_chans=in_chans, **load, **kwargs)
    if small_input is None:
        small_input = image_size <= SMALL_INPUT and family in ("resnet", "resnetv2")
    if small_input:
        _small_stem(net, keep_weights=pretrained_file is not None)
    return net


@CLASSIFIERS.register("timm")
class TimmClassifier(Classifier):
    """Any timm model by name (`model`), adapted to the data's channels, classes and size.

    Its `forward_features` returns pooled (N, D) penultimate features: timm's own
    `forward_features` returns unpooled maps (or tokens); `predict(features=True)` and the
    feature-space metrics need one vector per image, which is timm's pre-logits output of
    `forward_head`. The generic recipe."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, model: str = "resnet18",
                 pretrained_file: str | None = None, small_input: bool | None = None,
                 **kwargs: Any):
        net = build_timm_net(in_chans, num_classes, image_size, model, pretrained_file,
                             small_input, **kwargs)
        super().__init__()
        # any timm model: forward_features / forward_head by timm's convention, not by a
        # common base class (timm.create_model is typed nn.Module)
        self.net: Any = net
        self.num_features = int(getattr(net, "num_features", 0))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _named(name: str, timm_name: str, doc: str) -> None:
    """Register timm model `timm_name` as classifier `name` (a TimmClassifier subclass)."""

    def __init__(self: TimmClassifier, in_chans: int, num_classes: int, image_size: int,
                 pretrained_file: str | None = None, small_input: bool | None = None,
                 **kwargs: Any) -> None:
        TimmClassifier.__init__(self, in_chans, num_classes, image_size, model=timm_name,
                                pretrained_file=pretrained_file, small_input=small_input, **kwargs)

    cls_name = "Timm_" + name
    cls = type(cls_name, (TimmClassifier,), {"__doc__": doc, "__init__": __init__,
                                             "__module__": __name__, "__qualname__": cls_name})
    CLASSIFIERS.register(name)(cls)


_named("resnet18", "resnet18", "timm ResNet-18 (small-image stem at <= 64 px).")
_named("wide_resnet50_2", "wide_resnet50_2", "timm Wide ResNet-50-2 (small-image stem at <= 64 px).")
_named("vit_tiny_patch16_224", "vit_tiny_patch16_224",
       "timm ViT-Tiny; img_size from the data, patch size that divides it.")
_named("preact_resnet18", "resnetv2_18", "Pre-activation ResNet-18 (timm resnetv2_18).")


@CLASSIFIERS.register("cifar_resnet")
class CifarResNet(Classifier):
    """CIFAR ResNet of any depth 6n+2 (He et al. 2016), built from timm's ResNet blocks.

    A 3x3 stride-1 stem, three stages of n basic blocks with width, 2x and 4x channels,
    global pooling; timm's ResNet with three stages (its `forward_features` hard-codes
    four). The generic recipe."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, depth: int = 20,
                 width: int = 16):
        from timm.models.resnet import BasicBlock, ResNet

        if (depth - 2) % 6 or depth < 8:
            raise BenchError(f"classifier args.depth: {depth} is not 6n+2 (20, 32, 44, 56, 110).")
        if width < 2 or width % 2:
            raise BenchError(f"classifier args.width: {width} must be an even number >= 2.")
        super().__init__()
        n = (depth - 2) // 6
        # a 'deep' stem makes timm size bn1 and the first stage's input to 2 * stem_width =
        # width; its three convs are then replaced by the single 3x3 stride-1 CIFAR stem conv
        net = ResNet(BasicBlock, (n, n, n), num_classes=num_classes, in_chans=in_chans,  # type: ignore[arg-type]  # timm annotates `block` as an instance; it takes the class
                     stem_type="deep", stem_width=width // 2, channels=(width, 2 * width, 4 * width))
        # replace submodules whose static types timm fixed by their first assignment
        net.add_module("conv1", nn.Conv2d(in_chans, width, 3, 1, 1, bias=False))
        net.add_module("maxpool", nn.Identity())
        self.net: ResNet = net
        self.stages = [f"layer{i + 1}" for i in range(3)]
        self.num_features = int(net.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.act1(n.bn1(n.conv1(x))))
        for s in self.stages:
            x = getattr(n, s)(x)
        return n.forward_head(x, pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.forward_features(x))


@CLASSIFIERS.register("resnet20")
class ResNet20(CifarResNet):
    """CIFAR ResNet-20 (He et al. 2016), built from timm blocks."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, width: int = 16):
        super().__init__(in_chans, num_classes, image_size, depth=20, width=width)


@CLASSIFIERS.register("resnet32")
class ResNet32(CifarResNet):
    """CIFAR ResNet-32 (He et al. 2016), built from timm blocks."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, width: int = 16):
        super().__init__(in_chans, num_classes, image_size, depth=32, width=width)
