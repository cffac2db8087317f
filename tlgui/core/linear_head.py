"""A softmax regression on frozen features, in numpy, and out-of-fold probabilities from it.

The audit needs a classifier trained k times on cached features; Keras would spend most
of each fit on its own overhead (0.2-0.3 s per epoch on flower_photos), while this head
does the same mini-batch Adam steps in numpy in well under a second per fold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tlgui.core.errors import Cancelled


@dataclass(frozen=True)
class HeadSettings:
    """How the head is trained: the recipe of tlgui's phase 1 (Adam 1e-3, 10 epochs).

    Attributes:
        epochs: passes over the training rows.
        learning_rate: Adam step size.
        batch_size: rows per step.
        l2: weight decay added to the gradient.
        seed: initial order of the rows.
    """

    epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 32
    l2: float = 1e-3
    seed: int = 0


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class LinearHead:
    """A fitted softmax regression: ``probabilities(x) = softmax(x @ weights + bias)``."""

    weights: np.ndarray
    bias: np.ndarray

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n, classes]`` of feature rows ``[n, dims]``."""
        return softmax(np.asarray(features, dtype=np.float32) @ self.weights + self.bias)


def fit_head(features: np.ndarray, labels: np.ndarray, num_classes: int,
             settings: HeadSettings = HeadSettings(),
             sample_weight: np.ndarray | None = None,
             cancel: threading.Event | None = None) -> LinearHead:
    """Trains a softmax regression with mini-batch Adam, as Keras would, in numpy.

    Args:
        features: float rows ``[n, dims]``.
        labels: class index per row.
        num_classes: number of outputs (a class without rows still gets one).
        settings: the training recipe.
        sample_weight: per-row loss weights (e.g. inverse class frequency), or None.
        cancel: checked every 32 steps (``Cancelled``).

    Returns:
        The fitted head.
    """
    x = np.asarray(features, dtype=np.float32)
    n, dims = x.shape
    targets = np.eye(num_classes, dtype=np.float32)[labels]
    w_rows = np.ones(n, np.float32) if sample_weight is None else \
        np.asarray(sample_weight, np.float32)
    weights = np.zeros((dims, num_classes), np.float32)
    bias = np.zeros(num_classes, np.float32)
    params = [weights, bias]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-7
    rng = np.random.default_rng(settings.seed)
    step = 0
    for _ in range(settings.epochs):
        order = rng.permutation(n)
        for start in range(0, n, settings.batch_size):
            if cancel is not None and step % 32 == 0 and cancel.is_set():
                raise Cancelled("Cancelled.")
            rows = order[start:start + settings.batch_size]
            xb = x[rows]
            err = (softmax(xb @ weights + bias) - targets[rows]) * w_rows[rows, None]
            err /= len(rows)
            grads = [xb.T @ err + settings.l2 * weights, err.sum(axis=0)]
            step += 1
            lr = settings.learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
            for p, g, m, v in zip(params, grads, first, second, strict=True):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= lr * m / (np.sqrt(v) + eps)
    return LinearHead(weights, bias)


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0,
                     groups: np.ndarray | None = None) -> np.ndarray:
    """A fold number per row, each class spread evenly over the folds.

    Args:
        labels: class index per row.
        folds: number of folds.
        seed: the draw.
        groups: rows with the same group number go to the same fold (near-duplicates
            kept together, so that a copy never predicts its own twin).
    """
    labels = np.asarray(labels)
    n = len(labels)
    group = np.arange(n) if groups is None else np.asarray(groups, dtype=np.int64)
    rng = np.random.default_rng(seed)
    # A group takes its first member's class; groups are dealt round-robin per class.
    ids, first = np.unique(group, return_index=True)
    fold_of = np.zeros(len(ids), dtype=np.int64)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels[first] == cls)
        rng.shuffle(members)
        fold_of[members] = np.arange(len(members)) % folds
    out: np.ndarray = fold_of[np.searchsorted(ids, group)]
    return out


def out_of_fold_probabilities(
    views: Sequence[np.ndarray],
    labels: np.ndarray,
    num_classes: int,
    folds: int = 5,
    settings: HeadSettings = HeadSettings(),
    groups: np.ndarray | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Probabilities of every row from a head that never saw it.

    Args:
        views: one or more feature arrays ``[n, dims]`` of the same rows (the image, its
            mirror...): the head trains on all and averages its predictions over them.
        labels: the given class of each row.
        num_classes: number of classes.
        folds: the head is trained this many times, each time without one fold.
        settings: the head's training recipe.
        groups: rows that must share a fold (see ``stratified_folds``).
        cancel: checked between folds.
        progress: called with (folds done, folds).

    Returns:
        ``[n, classes]`` probabilities.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    folds = max(2, min(folds, n))
    fold = stratified_folds(labels, folds, settings.seed, groups)
    out = np.zeros((n, num_classes), dtype=np.float32)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    for k in range(folds):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Cancelled.")
        train = fold != k
        test = ~train
        if not test.any():
            continue
        y = labels[train]
        # Inverse class frequency, as training does for imbalanced classes.
        per_class = len(y) / (num_classes * np.maximum(np.bincount(y, minlength=num_classes), 1))
        w = per_class[y] if counts.max() > 1.5 * counts[counts > 0].min() else None
        x = np.concatenate([v[train] for v in views])
        head = fit_head(x, np.tile(y, len(views)), num_classes, settings,
                        None if w is None else np.tile(w, len(views)), cancel)
        out[test] = sum(head.probabilities(v[test]) for v in views) / len(views)
        if progress is not None:
            progress(k + 1, folds)
    return out
