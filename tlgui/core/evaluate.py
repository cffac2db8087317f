"""How well a trained classifier does on held-out images: confusion, precision, recall, misses.

The metrics are plain numpy on labels and probabilities; ``evaluate_model`` runs the
model over a dataset split (through the pixel cache) and hands its output to them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlgui.core.dataset import Dataset
from tlgui.core.errors import Cancelled, ConfigError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.pixel_cache import PixelCache, load_pixels


@dataclass(frozen=True)
class ClassMetrics:
    """Precision and recall of one class.

    Attributes:
        name: the class.
        precision: of the images predicted as this class, the share that are (NaN if none).
        recall: of the images of this class, the share found (NaN if none).
        support: images of this class in the evaluated split.
    """

    name: str
    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class Miss:
    """A misclassified image.

    Attributes:
        path: the image file.
        true_label: index of its class.
        predicted_label: index of the class the model chose.
        confidence: probability the model gave to its (wrong) choice.
        true_probability: probability the model gave to the right class.
    """

    path: Path
    true_label: int
    predicted_label: int
    confidence: float
    true_probability: float


@dataclass(frozen=True)
class Evaluation:
    """Results on one split.

    Attributes:
        class_names: the classes in label order.
        split: ``validation`` or ``test``.
        confusion: counts [true class, predicted class].
        per_class: precision and recall per class.
        accuracy: share of images classified correctly.
        misses: misclassified images, worst first.
    """

    class_names: tuple[str, ...]
    split: str
    confusion: np.ndarray
    per_class: tuple[ClassMetrics, ...]
    accuracy: float
    misses: tuple[Miss, ...]

    @property
    def total(self) -> int:
        """Number of images evaluated."""
        return int(self.confusion.sum())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) label pairs.

    Args:
        y_true: true labels, ints in ``[0, num_classes)``.
        y_pred: predicted labels, same length.
        num_classes: matrix side.

    Returns:
        int64 array [num_classes, num_classes]; rows are true classes.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape} true labels vs {y_pred.shape} predictions")
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (y_true, y_pred), 1)
    return out


def per_class_metrics(confusion: np.ndarray,
                      class_names: tuple[str, ...] | list[str]) -> tuple[ClassMetrics, ...]:
    """Precision, recall and support per class from a confusion matrix."""
    out = []
    for i, name in enumerate(class_names):
        tp = float(confusion[i, i])
        predicted = float(confusion[:, i].sum())
        actual = float(confusion[i, :].sum())
        out.append(ClassMetrics(
            name=name,
            precision=tp / predicted if predicted else float("nan"),
            recall=tp / actual if actual else float("nan"),
            support=int(actual),
        ))
    return tuple(out)


def misclassified(paths: list[Path], y_true: np.ndarray, probs: np.ndarray) -> tuple[Miss, ...]:
    """The wrong predictions, worst first.

    Worst means the least probability given to the right class; ties go to the more
    confident wrong choice.
    """
    pred = probs.argmax(axis=1)
    misses = []
    for i in np.flatnonzero(pred != y_true):
        misses.append(Miss(
            path=paths[i],
            true_label=int(y_true[i]),
            predicted_label=int(pred[i]),
            confidence=float(probs[i, pred[i]]),
            true_probability=float(probs[i, y_true[i]]),
        ))
    misses.sort(key=lambda m: (m.true_probability, -m.confidence))
    return tuple(misses)


def summarize(paths: list[Path], y_true: np.ndarray, probs: np.ndarray,
              class_names: tuple[str, ...], split: str = "validation") -> Evaluation:
    """Builds an ``Evaluation`` from true labels and predicted probabilities.

    Args:
        paths: the image files, in the order of ``y_true``.
        y_true: true labels.
        probs: predicted probabilities [n, classes].
        class_names: the classes.
        split: the name of the evaluated split.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64).reshape(len(y_true), len(class_names))
    pred = probs.argmax(axis=1) if len(y_true) else np.zeros(0, dtype=np.int64)
    confusion = confusion_matrix(y_true, pred, len(class_names))
    accuracy = float((pred == y_true).mean()) if len(y_true) else float("nan")
    return Evaluation(class_names, split, confusion, per_class_metrics(confusion, class_names),
                      accuracy, misclassified(paths, y_true, probs))


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
