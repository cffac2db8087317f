"""Running a trained classifier over a dataset split and measuring the result.

The measures themselves are in ``metrics`` (plain numpy, no model needed).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from tlgui.core.dataset import Dataset
from tlgui.core.errors import Cancelled, ConfigError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.metrics import (  # noqa: F401 - the names callers used to import from here
    ClassMetrics,
    Evaluation,
    Miss,
    confusion_matrix,
    misclassified,
    per_class_metrics,
    summarize,
)
from tlgui.core.pixel_cache import PixelCache, load_pixels


def predict_probabilities(model: Any, pixels: np.ndarray, batch_size: int = 32,
                          report: Report = ignore,
                          cancel: threading.Event | None = None) -> np.ndarray:
    """Runs a Keras classifier over uint8 images in batches, checking ``cancel`` between them."""
    import keras

    cancel = cancel or threading.Event()
    chunks = []
    n = len(pixels)
    last = 0.0
    for start in range(0, n, batch_size):
        if cancel.is_set():
            raise Cancelled("Evaluation cancelled.")
        out = model(pixels[start:start + batch_size], training=False)
        chunks.append(np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64))
        now = time.monotonic()
        done = min(start + batch_size, n)
        if now - last > 0.1 or done == n:
            last = now
            report(StageProgress("predict", done, n, "Classifying validation images"))
    if not chunks:
        return np.zeros((0, int(model.outputs[0].shape[-1])))
    return np.concatenate(chunks)


def evaluate_model(model: Any, image_size: int, dataset: Dataset, split: str = "validation",
                   cache: PixelCache | None = None, report: Report = ignore,
                   cancel: threading.Event | None = None, batch_size: int = 32) -> Evaluation:
    """Classifies every image of a split and measures the result.

    Args:
        model: the Keras classifier (uint8 images in, probabilities out).
        image_size: the size images are loaded at (the model's input size).
        dataset: the scanned dataset.
        split: ``validation`` or ``test``.
        cache: the pixel cache (default: the user cache folder).
        report: receives ``StageProgress`` for decoding and classifying.
        cancel: set it to stop; ``Cancelled`` is raised.
        batch_size: images per forward pass.

    Raises:
        ConfigError: the split has no images.
    """
    samples = getattr(dataset, split)
    if not samples:
        raise ConfigError(f"The dataset has no {split} images to evaluate on.")
    cache = cache or PixelCache()
    pixels, kept, _ = load_pixels(samples, image_size, cache, report, cancel)
    probs = predict_probabilities(model, pixels, batch_size, report, cancel)
    y_true = np.array([samples[i].label for i in kept], dtype=np.int64)
    paths = [samples[i].path for i in kept]
    return summarize(paths, y_true, probs, dataset.class_names, split)
