"""Running a trained classifier over a dataset split and measuring the result.

The measures themselves are in ``metrics`` (plain numpy, no model needed). The split is
streamed through the model a chunk of images at a time (``pixel_cache.iter_pixels``):
what is kept per image is a confusion count, and a ``Miss`` for each image classified
wrongly, so memory does not grow with the number of images evaluated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from tlgui.core.dataset import Dataset, Sample
from tlgui.core.errors import Cancelled, ConfigError
from tlgui.core.events import Event, Report, StageProgress, ignore
from tlgui.core.metrics import (  # noqa: F401 - the names callers used to import from here
    ClassMetrics,
    Evaluation,
    Miss,
    confusion_matrix,
    misclassified,
    per_class_metrics,
    summarize,
    worst_first,
)
from tlgui.core.pixel_cache import PixelCache, iter_pixels

# Images decoded ahead of the model; two chunks are in memory at a time.
EVALUATION_CHUNK = 256
CLASSIFYING = "Classifying validation images"


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
            report(StageProgress("predict", done, n, CLASSIFYING))
    if not chunks:
        return np.zeros((0, int(model.outputs[0].shape[-1])))
    return np.concatenate(chunks)


class _Tally:
    """Confusion counts and misses, added to a chunk of images at a time."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.misses: list[Miss] = []

    def add(self, samples: Sequence[Sample], kept: np.ndarray, probs: np.ndarray) -> None:
        y_true = np.array([samples[i].label for i in kept], dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float64).reshape(len(y_true), self.num_classes)
        if not len(y_true):
            return
        self.confusion += confusion_matrix(y_true, probs.argmax(axis=1), self.num_classes)
        # Kept in sample order and sorted again over all chunks at the end: the sort is
        # stable, so the order is the one ``summarize`` gives on the whole split.
        self.misses += misclassified([samples[i].path for i in kept], y_true, probs)

    def evaluation(self, class_names: tuple[str, ...], split: str) -> Evaluation:
        total = int(self.confusion.sum())
        accuracy = float(np.trace(self.confusion) / total) if total else float("nan")
        return Evaluation(class_names, split, self.confusion,
                          per_class_metrics(self.confusion, class_names), accuracy,
                          worst_first(self.misses))


def evaluate_model(model: Any, image_size: int, dataset: Dataset, split: str = "validation",
                   cache: PixelCache | None = None, report: Report = ignore,
                   cancel: threading.Event | None = None, batch_size: int = 32,
                   chunk: int = EVALUATION_CHUNK, mirror: bool = False) -> Evaluation:
    """Classifies every image of a split and measures the result.

    Images are decoded (through the cache) a chunk ahead of the model and dropped once
    classified, so at most two chunks of pixels are in memory whatever the split's size.
    Files that cannot be decoded any more (changed or deleted since the scan) are left
    out of the measures.

    Args:
        model: the Keras classifier (uint8 images in, probabilities out).
        image_size: the size images are loaded at (the model's input size).
        dataset: the scanned dataset.
        split: ``validation`` or ``test``.
        cache: the pixel cache (default: the user cache folder).
        report: receives ``StageProgress("predict", ...)`` over the whole split.
        cancel: set it to stop; ``Cancelled`` is raised.
        batch_size: images per forward pass.
        chunk: images decoded at a time.
        mirror: average each image's answer with its mirror's (``mirror_tta``): the
            figure an export made with the same option gives.

    Raises:
        ConfigError: the split has no images, or ``mirror`` was asked of a model tlgui
            did not build.
    """
    samples: tuple[Sample, ...] = getattr(dataset, split)
    if not samples:
        raise ConfigError(f"The dataset has no {split} images to evaluate on.")
    if mirror:
        from tlgui.core.mirror_tta import mirror_average

        model = mirror_average(model)
    cache = cache or PixelCache()
    cancel = cancel or threading.Event()
    n = len(samples)
    tally = _Tally(dataset.num_classes)
    report(StageProgress("predict", 0, n, CLASSIFYING))
    start = 0
    for part in iter_pixels(samples, image_size, cache, max(1, chunk), cancel):
        offset = start

        def overall(event: Event, offset: int = offset) -> None:
            # Progress within the chunk, told as progress over the whole split.
            if isinstance(event, StageProgress) and event.done < event.total:
                report(replace(event, done=offset + event.done, total=n))

        probs = predict_probabilities(model, part.pixels, batch_size, overall, cancel)
        tally.add(samples, part.indices, probs)
        start += max(1, chunk)
        report(StageProgress("predict", min(start, n), n, CLASSIFYING))
    return replace(tally.evaluation(dataset.class_names, split), mirror=mirror)
