"""Nearest real training images of generated ones (Shmelkov et al. 2018, Fig. 3).

In the penultimate feature space of the real-trained classifier (cosine similarity), a
generator that copies its training data puts generated images closer to training images
than held-out real images are: `nn_similarity_gap` = `gen_nn_similarity` -
`val_nn_similarity` is then positive. The grid shows, per row, a generated image and its
k nearest training images, for eyeballing copies and mode collapse.

Features are centred on the training-feature mean before the cosine: penultimate features
come after a ReLU and are all non-negative, so raw cosines crowd near 1 and hide the gap.
Similarities are computed in chunks of queries (memory O(N x chunk), never N x N). The
training features and the val similarity depend only on the data and are cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field

from bench.classifiers.train import ClassifierConfig, TrainedClassifier, predict
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.infra.grids import labelled_grid
from bench.infra.store import NNTrainFeaturesKey
from bench.metrics import METRICS
from bench.metrics._intervals import mean_with_interval, normal_with_interval
from bench.metrics._protocol import real_work
from bench.metrics.base import Context, Metric
from bench.models.base import Generator
from bench.record.values import diagnostic, reference, score


class NearestNeighboursOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    per_class: int = Field(2, ge=1, description="generated images per class shown in the grid")
    k: int = Field(5, ge=1, description="nearest training images shown per generated image")
    num_samples: int = Field(500, ge=1, description="generated images for gen_nn_similarity "
                             "(the first of the model's stream: the training split's class balance)")
    chunk_size: int = Field(1024, ge=1, description="queries per similarity block (memory)")
    cell_pixels: int = Field(24, ge=8, description="upscale grid images to about this size (nearest)")


def topk_cosine(queries: torch.Tensor, refs: torch.Tensor, k: int,
                chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k cosine similarities (and indices) of each query among refs, chunk by chunk."""
    q, r = F.normalize(queries.float(), dim=1), F.normalize(refs.float(), dim=1)
    sims, idx = [], []
    for i in range(0, q.shape[0], chunk):
        s, j = (q[i : i + chunk] @ r.T).topk(min(k, r.shape[0]), dim=1)
        sims.append(s)
        idx.append(j)
    return torch.cat(sims), torch.cat(idx)


def image_grid(rows: list[torch.Tensor], cell_pixels: int) -> Image.Image:
    """Rows of uint8 images (n, C, H, W) as one picture: upscaled with nearest neighbour so
    8x8 digits stay crisp, a wider gap after each row's first (generated) image."""
    c, h, w = rows[0].shape[1:]
    s = max(1, math.ceil(cell_pixels / max(h, w)))
    pad, gap = 2, 8
    n_cols = max(len(r) for r in rows)
    H, W = h * s + pad, w * s + pad
    canvas = np.full((len(rows) * H + pad, n_cols * W + gap + pad, 3 if c == 3 else 1), 128, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            a = img[:3] if c == 3 else img[:1]
            a = a.repeat_interleave(s, 1).repeat_interleave(s, 2).permute(1, 2, 0).numpy()
            y0, x0 = i * H + pad, j * W + pad + (gap if j > 0 else 0)
            canvas[y0 : y0 + h * s, x0 : x0 + w * s] = a
    return Image.fromarray(canvas if c == 3 else canvas[..., 0])


@METRICS.register("nearest_neighbours")
class NearestNeighbours(Metric[NearestNeighboursOptions]):
    """Nearest real training images of generated ones in classifier features; memorization gap."""

    # 2: 95% intervals (normal, over the per-image similarities); 3: generated images from
    # the model's shared stream (training-split class balance), the grid's too
    version = "3"
    # a gap above the held-out data's (about 0) means generated images sit closer to training
    # images than held-out real images do: copying. Far below means unrelated images.
    values = {"nn_similarity_gap": score("target", "memorisation", ref=True, target=0.0),
              "gen_nn_similarity": diagnostic("target", fallback="val_nn_similarity"),
              "val_nn_similarity": reference("higher")}
    primary = "nn_similarity_gap"
    needs_labels = True
    labels_for = "it searches in the features of a classifier trained on the real classes"
    needs_held_out = True  # its gap compares training with held-out (val) images

    @staticmethod
    def train_features(ctx: Context, dataset: Dataset, clf: TrainedClassifier
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """(centred training features, their mean), once per process and real classifier."""
        def compute() -> tuple[torch.Tensor, torch.Tensor]:
            f = predict(clf, dataset.train_x, ctx.device, features=True)
            mean = f.mean(0, keepdim=True)
            return f - mean, mean

        return ctx.store.get(NNTrainFeaturesKey(dataset.digest, clf.config.model_dump_json(),
                                                ctx.seed), compute)

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        clf = ctx.real_classifier(dataset, o.classifier)
        ref, mean = self.train_features(ctx, dataset, clf)

        def features(x: torch.Tensor) -> torch.Tensor:
            return predict(clf, x, ctx.device, features=True) - mean

        def val_similarity() -> dict[str, float]:
            s = topk_cosine(features(dataset.val_x), ref, 1, o.chunk_size)[0][:, 0]
            return {"mean": float(s.mean()), "sd": float(s.double().std()), "n": int(s.numel())}

        key = {"classifier": o.classifier.model_dump(mode="json")}
        val = real_work(ctx, dataset, "nn_val_similarity_stats", key, val_similarity)
        x, _ = ctx.generated(generator, dataset, o.num_samples)  # the model's shared stream
        gen = topk_cosine(features(x), ref, 1, o.chunk_size)[0][:, 0]
        gen_sim = float(gen.mean())
        self._grid(generator, dataset, ctx, features, ref)
        # 95% intervals, normal approximation over the per-image nearest-neighbour similarities
        # (the training features are the fixed reference); the gap's variance adds the two
        # means' variances (generated and val images are independent samples)
        gen_var = float(gen.double().var()) / len(gen) if len(gen) > 1 else float("nan")
        val_var = val["sd"] ** 2 / val["n"] if val["n"] > 1 else float("nan")
        return {**mean_with_interval("gen_nn_similarity", gen.double().numpy(), gen_sim),
                **normal_with_interval("val_nn_similarity", val["mean"], val["sd"] / val["n"] ** 0.5),
                **normal_with_interval("nn_similarity_gap", gen_sim - val["mean"],
                                       (gen_var + val_var) ** 0.5)}

    def _grid(self, generator: Generator, dataset: Dataset, ctx: Context,
              features: Callable[[torch.Tensor], torch.Tensor], ref: torch.Tensor) -> None:
        o = self.options
        # the first `per_class` images of each class in the stream, grouped by class
        x, labels = ctx.generated_by_class(generator, dataset, np.full(dataset.num_classes, o.per_class))
        order = torch.argsort(labels, stable=True)
        x, labels = x[order], labels[order]
        sims, idx = topk_cosine(features(x), ref, o.k, o.chunk_size)
        rows = [torch.cat([x[i : i + 1], dataset.train_x[idx[i]]]) for i in range(len(x))]
        # each row: the class it was generated for, the generated image, then its k nearest
        # training images (after a gap)
        names = [f"gen {dataset.class_names[c]}" for c in labels.tolist()]
        labelled_grid(rows, names, o.cell_pixels, gap_after_first=True).save(
            Path(ctx.artifact("nearest_neighbours.png")))
        table = pd.DataFrame({
            "row": np.arange(len(x)),
            "class": [dataset.class_names[c] for c in labels.tolist()],
            "neighbour_train_index": [" ".join(map(str, r)) for r in idx.tolist()],
            "neighbour_class": [" ".join(dataset.class_names[c] for c in dataset.train_y[r].tolist())
                                for r in idx.tolist()],
            "similarity": [" ".join(f"{v:.4f}" for v in r) for r in sims.tolist()],
        })
        table.to_csv(ctx.artifact("nearest_neighbours.csv"), index=False)
