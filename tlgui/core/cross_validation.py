"""A second, tighter figure for small sets: the head cross-validated over every photo.

With 20 photos per class, the validation share is 4 photos per class and its accuracy
swings by several points from the draw alone (``intervals.wilson_interval`` says how much).
The frozen features of every training and validation photo are already computed for
phase 1, so training the head five more times, each time without one fifth of the photos,
costs about a second and measures every photo with a model that never saw it: an accuracy
on all of them, with an interval that many more images make narrower.

It measures the phase-1 recipe (a head on the frozen backbone, ``linear_head``'s numpy
twin of it), not the model kept after fine-tuning, and says so wherever it is shown.
"""

from __future__ import annotations

import threading

import numpy as np

from tlgui.core.intervals import CrossValidation, wilson_interval
from tlgui.core.linear_head import HeadSettings, out_of_fold_probabilities
from tlgui.core.spill import FeatureArray, gather

__all__ = ["FOLDS", "MAX_ROWS", "MAX_WORK", "CrossValidation", "cross_validate"]

FOLDS = 5
# Beyond this many photos the validation share alone is large enough for a tight interval,
# and the features of all of them (5 KB each) would be read into memory at once.
MAX_ROWS = 20_000
# Photos x classes: the head's work grows with both (20,000 photos of 100 classes take
# about 15 s for the five folds on two cores); beyond, the figure is not worth the wait.
MAX_WORK = 2_000_000


def cross_validate(train: FeatureArray, train_labels: np.ndarray, val: FeatureArray | None,
                   val_labels: np.ndarray, num_classes: int, *, folds: int = FOLDS,
                   seed: int = 0, cancel: threading.Event | None = None,
                   max_rows: int = MAX_ROWS, settings: HeadSettings | None = None,
                   ) -> CrossValidation | None:
    """Trains the head ``folds`` times on pooled features; measures each photo once.

    Args:
        train: pooled features ``[views, n, dims]`` of the training photos (view 0 is
            the photo as it is).
        train_labels: class per training photo.
        val: the same for the validation photos, or None.
        val_labels: class per validation photo.
        num_classes: the classifier's outputs.
        folds: how many parts; each class is spread evenly over them.
        seed: the draw of the folds and the head's order of rows.
        cancel: checked between folds (``Cancelled``).
        max_rows: above this many photos nothing is measured (None).
        settings: the head's recipe (default: phase 1's defaults, Adam 1e-3, 10 epochs).

    Returns:
        The figure, or None when there are too many photos, or too few for every class
        to be in two folds.
    """
    parts = [(train, np.asarray(train_labels))]
    if val is not None and len(val_labels):
        parts.append((val, np.asarray(val_labels)))
    labels = np.concatenate([y for _, y in parts]).astype(np.int64)
    counts = np.bincount(labels, minlength=num_classes)
    if len(labels) > max_rows or len(labels) * num_classes > MAX_WORK \
            or (counts[counts > 0] < 2).any() or (counts > 0).sum() < 2:
        return None
    features = np.concatenate([gather(arr, 0, np.arange(len(y))) for arr, y in parts])
    folds = int(min(folds, counts[counts > 0].min()))
    probs = out_of_fold_probabilities([features.astype(np.float32)], labels, num_classes,
                                      folds=folds,
                                      settings=settings or HeadSettings(seed=seed),
                                      cancel=cancel)
    correct = int((probs.argmax(axis=1) == labels).sum())
    low, high = wilson_interval(correct, len(labels))
    return CrossValidation(correct / len(labels), correct, len(labels), low, high, folds)
