"""Small synthetic image datasets made with Pillow for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLORS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200),
          "yellow": (220, 210, 40)}


PATTERNS = {"red": "hstripes", "green": "vstripes", "blue": "checker", "yellow": "plain"}


def make_image(color: tuple[int, int, int], size: tuple[int, int], seed: int,
               pattern: str = "plain") -> Image.Image:
    """A noisy image of ``color`` with a class pattern (stripes, checks) at a random phase."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    period = max(4, min(w, h) // 5)
    phase = int(rng.integers(0, period))
    if pattern == "hstripes":
        mask = ((yy + phase) // (period // 2)) % 2 == 0
    elif pattern == "vstripes":
        mask = ((xx + phase) // (period // 2)) % 2 == 0
    elif pattern == "checker":
        mask = (((xx + phase) // (period // 2)) + ((yy + phase) // (period // 2))) % 2 == 0
    else:
        mask = np.zeros((h, w), bool)
    base = np.array(color, dtype=np.float64)
    arr = np.where(mask[..., None], base, base * 0.35) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def make_dataset(root: Path, classes: tuple[str, ...] = ("red", "green", "blue"),
                 per_class: int = 12, size: tuple[int, int] = (48, 40),
                 fmt: str = "JPEG", seed: int = 0) -> Path:
    """Writes ``root/<class>/img_<i>.jpg`` files and returns ``root``."""
    ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
    for ci, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(COLORS[name], size, seed * 1000 + ci * 100 + i,
                       PATTERNS[name]).save(
                d / f"img_{i:03d}.{ext}", fmt)
    return root
