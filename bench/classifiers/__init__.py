"""Classifiers: one registry of classifier plugins and the one training loop every metric uses.

Add one: a module with one `@CLASSIFIERS.register("name")` subclass of
`bench.classifiers.base.Classifier`, carrying its network, its default recipe and,
optionally, its own trainer (see that module).
"""

from bench.classifiers.base import Classifier
from bench.core.registry import Registry

CLASSIFIERS: Registry[type[Classifier]] = Registry(
    "classifiers",
    ["bench.classifiers.nets", "bench.classifiers.airbench", "bench.classifiers.timm_nets"],
    base=Classifier,
)

__all__ = ["CLASSIFIERS", "Classifier"]
