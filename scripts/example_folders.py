"""Two class folders to try `bench score` on, from data that ships with scikit-learn (no
download): the 1,797 handwritten digits (8x8 grey) as PNGs, the first 900 under REAL and the
other 897 under FAKE, one sub-folder per class (`REAL/3/17.png`).

    python scripts/example_folders.py real/ fake/

Both halves are real images, so FID and KID read about 0 (within their intervals): a
stand-in for your own generated images. Refuses to write into a folder that holds files.
"""

from __future__ import annotations

import sys
from pathlib import Path

REAL_IMAGES = 900  # the first 900 digits are REAL, the rest FAKE


def write_folders(real: Path, fake: Path) -> tuple[int, int]:
    """Writes the digits as PNGs under `real` and `fake`; returns the counts written."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    for d in (real, fake):
        if d.exists() and any(d.iterdir()):
            raise SystemExit(f"error: {d} is not empty; give a new folder (nothing was written)")
    digits = load_digits()
    images = np.round(digits.images / 16 * 255).astype(np.uint8)  # 0..16 -> 0..255
    for i, (img, label) in enumerate(zip(images, digits.target, strict=True)):
        folder = (real if i < REAL_IMAGES else fake) / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    return REAL_IMAGES, len(images) - REAL_IMAGES


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python scripts/example_folders.py REAL_DIR FAKE_DIR", file=sys.stderr)
        return 2
    n_real, n_fake = write_folders(Path(args[0]), Path(args[1]))
    print(f"{n_real} digits in {args[0]}, {n_fake} in {args[1]} (8x8 grey PNGs, one folder per class)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
