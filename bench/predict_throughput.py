"""Prediction speed of a saved classifier: folder throughput and single-image latency.

Usage::

    python bench/predict_throughput.py MODEL.keras FOLDER [--batch-size 32] [--limit 500]

Prints, with the model loaded and warmed up:
  - folder throughput in images/second, end to end (decode, resize, model), as
    ``tlgui predict FOLDER`` does it;
  - model-only throughput on already decoded pixels;
  - single-image latency (median and 90th percentile), end to end and model only,
    as when one image is dropped on the window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tlgui.core.predict import Predictor, collect_images, load_image


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(values) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help=".keras file or run folder")
    parser.add_argument("folder", type=Path, help="folder of images (recursive)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=500, help="at most this many images")
    parser.add_argument("--repeats", type=int, default=20, help="single-image timings")
    args = parser.parse_args()

    t0 = time.perf_counter()
    import keras  # noqa: F401  (timed apart: importing TensorFlow is not loading the model)

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictor = Predictor.load(args.model)
    load_s = time.perf_counter() - t0
    files = collect_images([args.folder])[:args.limit]
    if not files:
        raise SystemExit(f"no images in {args.folder}")
    print(f"model {predictor.path.name}: {len(predictor.class_names)} classes, "
          f"{predictor.image_size} px; import {import_s:.2f} s, load {load_s:.2f} s; "
          f"{os.cpu_count()} CPUs")

    # Warm up: the first call of each batch shape builds the graph.
    predictor.predict_paths(files[:args.batch_size], batch_size=args.batch_size)
    predictor.predict_paths(files[:1])

    t0 = time.perf_counter()
    rows = predictor.predict_paths(files, batch_size=args.batch_size)
    folder_s = time.perf_counter() - t0
    ok = [r.path for r in rows if r.error is None]
    print(f"folder, end to end: {len(rows)} files ({len(rows) - len(ok)} unreadable) in "
          f"{folder_s:.2f} s = {len(rows) / folder_s:.1f} images/s "
          f"(batch {args.batch_size})")

    size = predictor.image_size
    batch = np.stack([load_image(p, size) for p in ok[:args.batch_size]])
    reps = max(1, min(10, 200 // len(batch)))
    times = _timed(lambda: predictor.predict_pixels(batch), reps)
    print(f"model only, batch {len(batch)}: {len(batch) / statistics.median(times):.1f} "
          "images/s")

    singles = [ok[i % len(ok)] for i in range(args.repeats)]
    it = iter(singles)
    end_to_end = _timed(lambda: predictor.predict_paths([next(it)]), len(singles))
    print(f"single image, end to end: {_ms(end_to_end)}")
    one = batch[:1]
    model_only = _timed(lambda: predictor.predict_pixels(one), args.repeats)
    print(f"single image, model only: {_ms(model_only)}")


if __name__ == "__main__":
    main()
