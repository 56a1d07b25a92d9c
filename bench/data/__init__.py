"""Dataset sources. Add one: a module with a `@DATASETS.register("name")` DatasetSource."""

from bench.core.registry import Registry
from bench.data.base import DataInfo, Dataset, DatasetSource, stratified_split

DATASETS: Registry[type[DatasetSource]] = Registry(
    "datasets", ["bench.data.digits", "bench.data.torchvision_sets", "bench.data.image_folder",
                 "bench.data.npz"],
    base=DatasetSource,
)

__all__ = ["DATASETS", "DataInfo", "Dataset", "DatasetSource", "stratified_split"]
