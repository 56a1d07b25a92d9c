"""16-bit images are decoded the same way on the real side (image_folder) and the generated
side (samples): a 16-bit folder scored against itself has FID 0, as an 8-bit one does (the
samples side used to clip 16-bit values to 0/255: FID 0.46 for the same folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bench
from bench.data._util import decode_image
from bench.features import FEATURES
from bench.features.base import FeatureExtractor


class _Pixels(FeatureExtractor):
    """Flattened pixels / 255 (cheap, deterministic)."""

    def tag(self) -> str:
        return "test-pixels"

    def _forward(self, x: torch.Tensor):
        return x.float().flatten(1) / 255.0, None


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """60 flat 6x6 16-bit grayscale PNGs over the whole 0..65535 range."""
    root = tmp_path / "scans"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):
        im = Image.fromarray(rng.integers(0, 65536, (6, 6), dtype=np.uint16))
        assert im.mode == "I;16"
        im.save(root / f"{i:03d}.png")
    return root


def test_16_bit_png_decodes_by_its_range_not_clipped(scans):
    f = sorted(scans.iterdir())[0]
    with Image.open(f) as im:
        raw = np.asarray(im).astype(np.float64)
        got = np.asarray(decode_image(im, 1))
    assert got.dtype == np.uint8 and np.array_equal(got, np.round(raw / 65535 * 255))
    assert 0 < np.mean((got > 0) & (got < 255))  # mid-grey values survive


def test_a_16_bit_folder_scored_against_itself_has_fid_zero(scans, tmp_path):
    with FEATURES.scoped({"test_pixels": _Pixels}):
        ev = bench.evaluate(str(scans), str(scans), ["fid"], features="test_pixels",
                            cache_dir=tmp_path / "cache")
    assert abs(ev["fid"].value) < 1e-6, ev["fid"]
