"""The embedded default: scikit-learn's 1,797 real 8x8 handwritten digits (no download)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from bench.core.registry import Options
from bench.data import DATASETS
from bench.data.base import DataInfo, Dataset, DatasetSource, stratified_split


class DigitsOptions(Options):
    image_size: int = Field(8, ge=8, le=256, description="resize (bilinear) to this side length")
    val_fraction: float = Field(0.3, gt=0, lt=1, description="stratified share held out as val")
    split_seed: int = Field(0, description="seed of the train/val split (not the suite seed)")


@DATASETS.register("digits")
class Digits(DatasetSource[DigitsOptions]):
    """Real handwritten digits bundled with scikit-learn (1,797 images, 10 classes, 8x8)."""

    def describe(self) -> DataInfo:
        s = self.options.image_size
        return DataInfo(1, s, s, 10)

    def load(self, cache: Any = None) -> Dataset:
        from sklearn.datasets import load_digits

        d = load_digits()
        # sklearn stores 0..16 intensities; scale to the uint8 range every other source uses
        x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
        y = d.target.astype(np.int64)
        x_t = torch.from_numpy(x)
        s = self.options.image_size
        if s != 8:
            x_t = F.interpolate(x_t.float(), size=(s, s), mode="bilinear", align_corners=False)
            x_t = x_t.round().clamp(0, 255).to(torch.uint8)
        tr, va = stratified_split(y, self.options.val_fraction, self.options.split_seed)
        return Dataset(
            name="digits",
            train_x=x_t[tr].contiguous(),
            train_y=torch.from_numpy(y[tr]),
            val_x=x_t[va].contiguous(),
            val_y=torch.from_numpy(y[va]),
            num_classes=10,
            class_names=[str(i) for i in range(10)],
        )
