"""Generator sources. Add one: a module with a `@MODELS.register("name")` ModelSource."""

from bench.core.registry import Registry
from bench.models.base import BuildContext, Generator, ModelSource, check_samples

MODELS: Registry[type[ModelSource]] = Registry(
    "models", ["bench.models.reference", "bench.models.samples", "bench.models.cgan",
               "bench.models.baselines", "bench.models.callable_model", "bench.models.mlflow_model"],
    base=ModelSource,
)

__all__ = ["MODELS", "BuildContext", "Generator", "ModelSource", "check_samples"]
