"""Standard benchmark sets through `torchvision.datasets`: MNIST, Fashion-MNIST, CIFAR-10/100,
SVHN and STL-10, read from their usual on-disk layout.

torchvision does the parsing (and its own checksum verification), so the files a user
already has for training load here unchanged. Each set's train split becomes the suite's
`train` and its test split the suite's `val`. Nothing is downloaded unless the suite says
`download: true`: a benchmark that fetches data behind the user's back is not reproducible
and fails on machines without internet.

Memory: the first load parses both splits with torchvision (its own file formats, plus at
most one copy of each: channels-first layout, a `max_per_class` subset or a resize) into a
uint8 cache entry (`torchvision/` in the cache
folder, keyed by the options and the files' names, sizes and modification times); every
load then memory-maps that entry, as image_folder does with its decoded images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.core.version import __version__
from bench.data import DATASETS
from bench.data._mapped import cached, mapped, write_meta, write_rows
from bench.data._util import limit_per_class, resize_uint8
from bench.data.base import DataInfo, Dataset, DatasetSource
from bench.infra.cache import Cache, atomic_write

SetName = Literal["mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "stl10"]

_MNIST_RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class _SetInfo:
    """What must be on disk for one torchvision set, and how to get it."""

    tv_class: str  # attribute of torchvision.datasets
    shape: tuple[int, int, int]
    num_classes: int
    folder: str  # sub-folder of `root` holding the files ("" for root itself)
    files: tuple[str, ...]  # files torchvision needs (the split files and metadata)
    how_to_get: str  # what to download and where to put it
    split_arg: Literal["train", "split"]  # train=True/False or split="train"/"test"
    alt_files: tuple[str, ...] = ()  # an alternative layout, relative to root (MNIST's processed/)


_SETS: dict[str, _SetInfo] = {
    "mnist": _SetInfo(
        "MNIST", (1, 28, 28), 10, "MNIST/raw", _MNIST_RAW,
        "the four .gz files (train-images-idx3-ubyte.gz, ...) from "
        "https://ossci-datasets.s3.amazonaws.com/mnist/, gunzipped into {dir}", "train",
        alt_files=("MNIST/processed/training.pt", "MNIST/processed/test.pt")),
    "fashion_mnist": _SetInfo(
        "FashionMNIST", (1, 28, 28), 10, "FashionMNIST/raw", _MNIST_RAW,
        "the four .gz files (train-images-idx3-ubyte.gz, ...) from "
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/, gunzipped into {dir}",
        "train", alt_files=("FashionMNIST/processed/training.pt", "FashionMNIST/processed/test.pt")),
    "cifar10": _SetInfo(
        "CIFAR10", (3, 32, 32), 10, "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
        "extracted in {root}", "train"),
    "cifar100": _SetInfo(
        "CIFAR100", (3, 32, 32), 100, "cifar-100-python", ("train", "test", "meta"),
        "cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
        "extracted in {root}", "train"),
    "svhn": _SetInfo(
        "SVHN", (3, 32, 32), 10, "", ("train_32x32.mat", "test_32x32.mat"),
        "train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/, "
        "placed in {root}", "split"),
    "stl10": _SetInfo(
        "STL10", (3, 96, 96), 10, "stl10_binary",
        # torchvision's integrity check also wants the unlabeled images, though we never read them
        ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin"),
        "stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/, extracted in {root}",
        "split"),
}

FORMAT = "1"  # of the parsed-set cache entries

_STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


class TorchvisionOptions(Options):
    # not `name`: in a suite, `name:` is an alias of `source:` (the plugin's name)
    dataset: SetName = Field(description="mnist | fashion_mnist | cifar10 | cifar100 | svhn | stl10")
    root: Path = Field(description="folder holding the dataset in torchvision's layout "
                       "(the `root` you would pass to torchvision.datasets)")
    download: bool = Field(False, description="let torchvision download missing files "
                           "(needs internet; off so that runs never fetch data silently)")
    image_size: int | None = Field(None, ge=4, le=1024,
                                   description="resize (bilinear, antialiased) to this side length")
    max_per_class: int | None = Field(None, ge=1, description="keep at most this many images "
                                      "per class in each split (seeded, deterministic subset)")


@DATASETS.register("torchvision")
class TorchvisionSet(DatasetSource[TorchvisionOptions]):
    """A torchvision dataset (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN, STL-10) from local files."""

    @property
    def _info(self) -> _SetInfo:
        return _SETS[self.options.dataset]

    @property
    def _dir(self) -> Path:
        return self.options.root / self._info.folder

    def describe(self) -> DataInfo:
        c, h, w = self._info.shape
        s = self.options.image_size
        return DataInfo(c, s or h, s or w, self._info.num_classes)

    def missing_files(self) -> list[str]:
        """Files torchvision needs that are absent (an empty list when it can load)."""
        d = self._dir
        missing = [f for f in self._info.files if not (d / f).is_file()]
        alt = self._info.alt_files
        if missing and alt and all((self.options.root / f).is_file() for f in alt):
            return []  # MNIST's legacy processed/*.pt layout, which torchvision still reads
        return missing

    def check(self) -> None:
        o = self.options
        if o.download:
            return  # torchvision fetches what is missing when the dataset loads
        missing = self.missing_files()
        if missing:
            where = self._dir.resolve()
            how = self._info.how_to_get.format(dir=where, root=o.root.resolve())
            raise BenchError(
                f"torchvision dataset '{o.dataset}': {len(missing)} file(s) missing in {where}: "
                f"{', '.join(missing)} (expected: {', '.join(self._info.files)}). Either set "
                f"`download: true` on a machine with internet, or download {how}."
            )

    def _open(self, train: bool) -> Any:
        import torchvision.datasets as tvd

        info, o = self._info, self.options
        cls = getattr(tvd, info.tv_class)
        if info.split_arg == "train":
            kw: dict[str, Any] = {"train": train}
        else:
            kw = {"split": "train" if train else "test"}
        try:
            return cls(root=str(o.root), download=o.download, **kw)
        except RuntimeError as e:
            # every file is present (check() ran) yet torchvision refused: its md5 check failed
            raise BenchError(
                f"torchvision dataset '{o.dataset}' in {self._dir.resolve()}: {e}. The files are "
                f"present but failed torchvision's checksum (a partial download or different "
                f"files); delete them and fetch {info.how_to_get.format(dir=self._dir, root=o.root)}."
            ) from None

    def _arrays(self, ds: Any) -> tuple[np.ndarray, np.ndarray]:
        """torchvision's per-set attributes -> uint8 (N, C, H, W) and int64 labels."""
        name = self.options.dataset
        if name in ("mnist", "fashion_mnist"):
            x = ds.data.numpy()[:, None]
            y = ds.targets.numpy()
        elif name in ("cifar10", "cifar100"):
            x = np.asarray(ds.data).transpose(0, 3, 1, 2)  # stored (N, H, W, C)
            y = np.asarray(ds.targets)
        else:  # svhn, stl10 keep (N, C, H, W) in `data` and their labels in `labels`
            x = np.asarray(ds.data)
            y = np.asarray(ds.labels)
        return np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.int64)

    def _class_names(self, ds: Any) -> list[str]:
        names = list(getattr(ds, "classes", None) or [])
        if len(names) == self._info.num_classes:
            return [str(n) for n in names]
        if self.options.dataset == "stl10":  # class_names.txt is optional in the archive layout
            return list(_STL10_CLASSES)
        return [str(i) for i in range(self._info.num_classes)]  # SVHN: the digits

    def _cache_key(self) -> dict[str, Any]:
        """What the parsed images depend on: every option and the set's files' names, sizes
        and modification times."""
        # the files torchvision reads (not the whole folder: SVHN's is `root` itself)
        files = [f for f in (*(self._dir / n for n in self._info.files),
                             *(self.options.root / n for n in self._info.alt_files)) if f.is_file()]
        stats = [f"{f.relative_to(self.options.root)}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                 for f in files]
        return {"options": self.options.model_dump(mode="json"), "root": str(self.options.root.resolve()),
                "files": stats, "format": FORMAT, "bench": __version__}

    def load(self, cache: Any = None) -> Dataset:
        """Parsed by torchvision once into a memory-mapped cache entry (bench/data/_mapped.py),
        then mapped: the set is never a private copy in memory after its first load."""
        self.check()
        path, meta = cached(cache if cache is not None else Cache(), "torchvision",
                            self._cache_key(), FORMAT, self._parse)
        return self._dataset(path, meta)

    def _dataset(self, path: Path, meta: dict[str, Any]) -> Dataset:
        x = torch.from_numpy(mapped(path))
        n = int(meta["n_train"])
        ds = Dataset(name=self.options.dataset, train_x=x[:n],
                     train_y=torch.tensor(meta["train_y"], dtype=torch.int64), val_x=x[n:],
                     val_y=torch.tensor(meta["val_y"], dtype=torch.int64),
                     num_classes=self._info.num_classes, class_names=list(meta["class_names"]))
        ds.notes = {}
        if meta.get("digest"):  # hashed when the entry was written: not read again
            ds.__dict__["digest"] = meta["digest"]
        return ds

    def _parse(self, path: Path) -> dict[str, Any]:
        """Both splits through torchvision's parsers (plus at most one copy of each:
        channels-first layout, a `max_per_class` subset or a resize), written into the
        entry's .npy; then its .json."""
        o = self.options
        splits, names = [], []
        for train in (True, False):
            ds = self._open(train)
            x, y = self._arrays(ds)
            if o.max_per_class is not None:
                keep = limit_per_class(y, o.max_per_class)
                x, y = x[keep], y[keep]
            if o.image_size:
                x = resize_uint8(torch.from_numpy(x), o.image_size).contiguous().numpy()
            if train:
                names = self._class_names(ds)
            splits.append((x, y))
        for split, (_, lab) in zip(("train", "test"), splits, strict=True):
            if len(lab) and (int(lab.min()) < 0 or int(lab.max()) >= self._info.num_classes):
                raise BenchError(f"torchvision dataset '{o.dataset}': {split} labels span "
                                 f"{int(lab.min())}..{int(lab.max())}, expected 0.."
                                 f"{self._info.num_classes - 1}. Are these the right files?")
        (tx, ty), (vx, vy) = splits
        shape = (len(ty) + len(vy), *tx.shape[1:])
        atomic_write(path, lambda tmp: write_rows(tmp, shape, [(tx, np.arange(len(tx))),
                                                               (vx, np.arange(len(vx)))]))
        meta: dict[str, Any] = {"format": FORMAT, "shape": list(shape), "n_train": len(ty),
                                "train_y": ty.tolist(), "val_y": vy.tolist(), "class_names": names}
        meta["digest"] = self._dataset(path, meta).digest  # one read of the file
        write_meta(path, meta)
        return meta
