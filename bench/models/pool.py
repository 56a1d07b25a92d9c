"""A generator that serves images from a labelled pool (real data, pre-generated samples)."""

from __future__ import annotations

import numpy as np
import torch

from bench.models.base import Generator


class PoolGenerator(Generator):
    """Draws, for each requested label, images of that class from a fixed pool.

    Per class the pool is permuted with the seed and walked without replacement (wrapping
    around when exhausted), so asking for the real training labels returns the real
    training set itself: the paper's upper-bound row.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int):
        self.images = images
        self.labels = labels
        self.num_classes = num_classes
        c, h, w = (int(s) for s in images.shape[1:])
        self.image_shape = (c, h, w)
        y = labels.numpy()
        self._by_class = [np.flatnonzero(y == c) for c in range(num_classes)]
        self.distinct_images = len(y)
        self.distinct_per_class = tuple(len(i) for i in self._by_class)

    def missing_classes(self) -> list[int]:
        return [c for c, idx in enumerate(self._by_class) if len(idx) == 0]

    def pick(self, labels: torch.Tensor, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        lab = labels.cpu().numpy()
        out = np.empty(len(lab), dtype=np.int64)
        for c in np.unique(lab):
            pos = np.flatnonzero(lab == c)
            pool = self._by_class[int(c)]
            if len(pool) == 0:
                raise ValueError(f"no images of class {int(c)} to sample from")
            perm = rng.permutation(pool)
            out[pos] = perm[np.arange(len(pos)) % len(perm)]
        return out

    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        assert len(labels) == n
        return self.images[torch.from_numpy(self.pick(labels, seed))]

    def pick_stream(self, labels: torch.Tensor, start: int, seed: int) -> np.ndarray:
        """Pool indices for `labels[start:]` of a stream: class c's i-th label in the whole
        stream takes the i-th image of one seeded permutation of class c's pool (wrapping
        around), so the stream walks each class without replacement across blocks and the
        training-size prefix of a training-balanced stream is the training set itself."""
        lab = labels.cpu().numpy()
        out = np.empty(len(lab) - start, dtype=np.int64)
        for c in np.unique(lab[start:]):
            pool = self._by_class[int(c)]
            if len(pool) == 0:
                raise ValueError(f"no images of class {int(c)} to sample from")
            occ = np.flatnonzero(lab == c)  # its positions in the stream so far
            rank = np.arange(len(occ))
            mine = occ >= start
            perm = np.random.default_rng([seed % 2**63, int(c)]).permutation(pool)
            out[occ[mine] - start] = perm[rank[mine] % len(perm)]
        return out

    def sample_stream(self, labels: torch.Tensor, start: int, seed: int) -> torch.Tensor:
        return self.images[torch.from_numpy(self.pick_stream(labels, start, seed))]
