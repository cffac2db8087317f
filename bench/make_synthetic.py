"""A large synthetic dataset, fast: class folders of small, distinct JPEG files.

Usage::

    python bench/make_synthetic.py OUT [--images 100000] [--classes 50] [--size 32]
                                       [--seed 0] [--bases 6]

Encoding 100,000 JPEGs one by one would take minutes; instead a few distinct images are
encoded per class (``--bases``), and every file is one of them with a JPEG comment
(a COM segment, which decoders skip) naming the file's number spliced in after the
start-of-image marker. Every file is then a valid JPEG with different bytes, so no two
files are identical (no label conflicts) while the pixels repeat; file sizes vary by a
few bytes, so many same-size files sit in different classes, the worst case for the
scan's duplicate check.

``make_synthetic(out, images, classes, size, seed)`` is importable for other benchmarks
(``bench/scale.py``). It refuses an ``OUT`` that exists and is not empty.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

SOI = b"\xff\xd8"


def _base_jpegs(classes: int, bases: int, size: int, seed: int) -> list[list[bytes]]:
    """``bases`` encoded JPEGs per class: a class colour with noise and a stripe."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(classes):
        colour = rng.integers(0, 256, size=3)
        per_class = []
        for _ in range(bases):
            noise = rng.integers(-40, 41, size=(size, size, 3))
            pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
            row = int(rng.integers(0, size))
            pixels[row:row + max(1, size // 8)] = 255 - colour
            buf = io.BytesIO()
            Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=90)
            per_class.append(buf.getvalue())
        out.append(per_class)
    return out


def _with_comment(jpeg: bytes, text: str) -> bytes:
    """The JPEG with a COM segment holding ``text`` right after its SOI marker."""
    payload = text.encode("ascii")
    segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return SOI + segment + jpeg[len(SOI):]


def make_synthetic(out: str | Path, images: int = 100_000, classes: int = 50,
                   size: int = 32, seed: int = 0, bases: int = 6) -> Path:
    """Writes ``images`` JPEGs spread evenly over ``classes`` class folders in ``out``.

    Args:
        out: the dataset folder to create (must not exist, or be empty).
        images: total number of files.
        classes: number of class folders (``class_000``, ``class_001``...).
        size: side of the square images in pixels.
        seed: seeds the colours and noise; the same arguments give the same bytes.
        bases: distinct encoded images per class.

    Returns:
        The dataset folder.

    Raises:
        FileExistsError: ``out`` exists and is not empty.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    if classes < 1 or images < classes:
        raise ValueError("need at least one class and one image per class")
    encoded = _base_jpegs(classes, bases, size, seed)
    folders = [out / f"class_{c:03d}" for c in range(classes)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        c = i % classes
        data = _with_comment(encoded[c][(i // classes) % bases], f"tlgui synthetic {i}")
        (folders[c] / f"img_{i:07d}.jpg").write_bytes(data)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("out")
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--classes", type=int, default=50)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bases", type=int, default=6)
    args = p.parse_args()
    t0 = time.perf_counter()
    try:
        make_synthetic(args.out, args.images, args.classes, args.size, args.seed, args.bases)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.images} images in {args.classes} classes written to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
