"""Small synthetic image datasets made with Pillow for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLORS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200),
          "yellow": (220, 210, 40)}


def make_image(color: tuple[int, int, int], size: tuple[int, int], seed: int) -> Image.Image:
    """A noisy image dominated by ``color`` with a random bright square."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = np.clip(rng.normal(0, 25, (h, w, 3)) + np.array(color), 0, 255).astype(np.uint8)
    x, y = rng.integers(0, max(1, w // 2)), rng.integers(0, max(1, h // 2))
    arr[y:y + h // 4, x:x + w // 4] = 255 - np.array(color, dtype=np.uint8)
    return Image.fromarray(arr, "RGB")


def make_dataset(root: Path, classes: tuple[str, ...] = ("red", "green", "blue"),
                 per_class: int = 12, size: tuple[int, int] = (48, 40),
                 fmt: str = "JPEG", seed: int = 0) -> Path:
    """Writes ``root/<class>/img_<i>.jpg`` files and returns ``root``."""
    ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
    for ci, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(COLORS[name], size, seed * 1000 + ci * 100 + i).save(
                d / f"img_{i:03d}.{ext}", fmt)
    return root
