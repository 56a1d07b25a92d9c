"""Labelled image grids: one row per class, the class name on the left, images upscaled with
nearest neighbour to a readable size. Used for every model's sample grid (logged once per
model and dataset, shown in the HTML board) and by metrics that show images per row."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def labelled_grid(rows: list[torch.Tensor], labels: list[str], cell_pixels: int = 32,
                  gap_after_first: bool = False, max_width: int = 1200) -> Image.Image:
    """Rows of uint8 images (n, C, H, W) as one picture, each row headed by its label. Images
    are upscaled to about `cell_pixels` (8x8 digits stay crisp), and the whole picture is kept
    under `max_width` by showing fewer columns."""
    c, h, w = rows[0].shape[1:]
    s = max(1, math.ceil(cell_pixels / max(h, w)))
    pad, gap = 2, (8 if gap_after_first else 0)
    font = ImageFont.load_default()
    label_w = 8 + max(int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(str(t), font=font))
                      for t in labels) if labels else 0
    cell_w, cell_h = w * s + pad, h * s + pad
    n_cols = min(max(len(r) for r in rows), max(1, (max_width - label_w - gap) // cell_w))
    width, height = label_w + n_cols * cell_w + gap + pad, len(rows) * cell_h + pad
    mode = "RGB" if c == 3 else "L"
    canvas = Image.new(mode, (width, height), (255, 255, 255) if mode == "RGB" else 255)
    draw = ImageDraw.Draw(canvas)
    for i, (row, text) in enumerate(zip(rows, labels, strict=True)):
        y0 = i * cell_h + pad
        draw.text((4, y0 + cell_h // 2 - 6), str(text), fill=(0, 0, 0) if mode == "RGB" else 0, font=font)
        for j, img in enumerate(row[:n_cols]):
            a = (img[:3] if c == 3 else img[:1]).repeat_interleave(s, 1).repeat_interleave(s, 2)
            arr = a.permute(1, 2, 0).numpy().astype(np.uint8)
            tile = Image.fromarray(arr if c == 3 else arr[..., 0], mode)
            x0 = label_w + j * cell_w + pad + (gap if j > 0 else 0)
            canvas.paste(tile, (x0, y0))
    return canvas


MAX_GRID_CLASSES = 20  # rows of a sample grid: a 1,000-class set shows its first 20 classes


def grid_counts(num_classes: int, per_class: int = 8) -> np.ndarray:
    """Images per class a sample grid shows: `per_class` of each of the first
    `MAX_GRID_CLASSES` classes."""
    counts = np.zeros(num_classes, dtype=np.int64)
    counts[:MAX_GRID_CLASSES] = per_class
    return counts


def sample_grid(images: torch.Tensor, labels: torch.Tensor, class_names: list[str],
                cell_pixels: int = 32) -> Image.Image:
    """Generated images (uint8) in one row per class, in class order, each row headed by its
    class name; classes without images get no row."""
    rows, names = [], []
    for c, name in enumerate(class_names):
        sel = images[labels == c]
        if len(sel):
            rows.append(sel)
            names.append(str(name))
    return labelled_grid(rows, names, cell_pixels)
