"""Classifier architectures (one registry) and the one training loop every metric uses."""

from collections.abc import Callable
from typing import Any

from bench.core.registry import Registry

# name -> factory(in_chans, num_classes, image_size, **args) -> nn.Module: functions, so no
# base class; the registry only checks that entries are callable.
CLASSIFIERS: Registry[Callable[..., Any]] = Registry(
    "classifiers",
    ["bench.classifiers.nets", "bench.classifiers.airbench", "bench.classifiers.timm_nets"],
)

__all__ = ["CLASSIFIERS"]
