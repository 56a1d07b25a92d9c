"""A 2-D map of real and generated features (t-SNE, or UMAP where installed), coloured by
class: mode dropping, off-manifold samples and class mixing are visible at a glance."""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from bench.core.registry import Options
from bench.features.base import FeatureSpec
from bench.metrics import METRICS
from bench.metrics.base import Metric


class EmbeddingOptions(Options):
    num_samples: int = Field(500, ge=10, description="points per side (real val, generated)")
    method: Literal["tsne", "umap"] = "tsne"
    features: FeatureSpec = Field(default_factory=lambda: FeatureSpec(name="classifier"))


def readable_extractor(tag: str) -> str:
    """An extractor tag as a person reads it: 'classifier:small_cnn-3f2a...' -> 'classifier
    (small_cnn)', 'inception-2015-12-05:pt_inception.pth:resize=bilinear299' -> 'Inception-v3'.
    The full tag stays on the run (bench.features) for exact provenance."""
    if tag.startswith("inception"):
        return "Inception-v3"
    kind, _, rest = tag.partition(":")
    rest = rest.rsplit("-", 1)[0] if "-" in rest else rest
    return f"{kind} ({rest})" if rest else kind or "?"


@METRICS.register("embedding_plot")
class EmbeddingPlot(Metric[EmbeddingOptions]):
    """2-D t-SNE/UMAP map of real and generated features by class (an image artifact)."""

    version = "2"  # 2: the model's shared sample stream and its features (bench.infra.store)
    values = {}  # an image artifact, no values

    def compute(self, generator, dataset, ctx):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        o = self.options
        real = ctx.real_features(dataset, o.features, "val")
        rng = np.random.default_rng(ctx.seed)
        idx = rng.permutation(len(real))[: o.num_samples]
        real, real_y = real[idx], dataset.val_y[idx]
        fake, labels = ctx.fake_features_and_labels(generator, dataset, o.features,
                                                    min(o.num_samples, len(dataset.train_y)))
        pts = torch.cat([real, fake]).numpy()
        if o.method == "umap" and importlib.util.find_spec("umap") is not None:
            import umap

            xy = umap.UMAP(random_state=ctx.seed).fit_transform(pts)
            method = "UMAP"
        else:
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, random_state=ctx.seed, init="pca",
                      perplexity=min(30, len(pts) // 4)).fit_transform(pts)
            method = "t-SNE"
        n = len(real)
        fig, ax = plt.subplots(figsize=(7, 6))
        cmap = plt.get_cmap("tab10" if dataset.num_classes <= 10 else "tab20")
        for c in range(dataset.num_classes):
            col = cmap(c % cmap.N)
            r, f = real_y.numpy() == c, labels.numpy() == c
            pr, pf = xy[:n][r], xy[n:][f]
            ax.scatter(pr[:, 0], pr[:, 1], s=8, color=col, marker="o", alpha=0.5,
                       label=dataset.class_names[c])
            ax.scatter(pf[:, 0], pf[:, 1], s=14, color=col, marker="x", alpha=0.8)
        ax.set_title(f"{method} of {readable_extractor(ctx.tags.get('features', ''))} features\n"
                     " o real (val)   x generated")
        ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2)
        fig.tight_layout()
        fig.savefig(ctx.artifact("embedding.png"), dpi=110)
        plt.close(fig)
        ctx.tags["embedding_method"] = method
        return {}
