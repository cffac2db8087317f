"""Finding label errors from out-of-fold probabilities: confident learning, in numpy.

Written from the paper (Northcutt, Jiang, Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 70, 2021), section 3, with the choices cleanlab makes
by default (``filter_by="prune_by_noise_rate"``; an image the model assigns to its given
class is never flagged). ADR 005 says why this is not the cleanlab package.

1. Per-class thresholds: ``t_j`` = the mean predicted probability of class ``j`` over the
   images labelled ``j`` (how confident the model is on its own class).
2. Confident joint ``C[i, j]``: images labelled ``i`` whose probability of ``j`` reaches
   ``t_j`` (the most probable such ``j`` when several do).
3. Calibration: each row of ``C`` is scaled to the number of images labelled ``i``, and
   the whole to ``n``: ``Q[i, j]`` estimates how many images labelled ``i`` are really ``j``.
4. Prune by noise rate: among the images labelled ``i``, the ``round(Q[i, j])`` with the
   largest margin ``p_j - p_i`` are flagged, for every ``j != i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelIssues:
    """What confident learning found.

    Attributes:
        flagged: indices of the images flagged, most likely mislabeled first.
        suggested: for every image, the most likely other class (noisy-channel posterior).
        score: for every image, ``1 - p(given class)``: how little the model believes the
            given label (the "self-confidence" ranking of the paper, turned into a score).
        thresholds: ``t_j`` per class.
        joint: the calibrated joint ``Q`` (counts; rows = given class, columns = true).
    """

    flagged: np.ndarray
    suggested: np.ndarray
    score: np.ndarray
    thresholds: np.ndarray
    joint: np.ndarray


def per_class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``t_j``: mean probability of class ``j`` over the images labelled ``j`` (1 if none)."""
    k = probs.shape[1]
    out = np.ones(k, dtype=np.float64)
    for j in range(k):
        rows = labels == j
        if rows.any():
            out[j] = float(probs[rows, j].mean())
    return out


def confident_joint(probs: np.ndarray, labels: np.ndarray,
                    thresholds: np.ndarray) -> np.ndarray:
    """Counts ``C[given, confident class]`` of the images that reach some threshold."""
    k = probs.shape[1]
    above = probs >= thresholds[None, :]
    has = above.any(axis=1)
    pick = np.where(above, probs, -1.0).argmax(axis=1)
    joint = np.zeros((k, k), dtype=np.float64)
    np.add.at(joint, (labels[has], pick[has]), 1.0)
    return joint


def calibrate(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Scales each row to the number of images with that label, and the sum to ``n``."""
    k = joint.shape[0]
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    rows = joint.sum(axis=1, keepdims=True)
    scaled = np.where(rows > 0, joint / np.maximum(rows, 1e-12), 0.0) * counts[:, None]
    total = scaled.sum()
    out: np.ndarray = scaled / total * len(labels) if total > 0 else scaled
    return out


def find_label_issues(probs: np.ndarray, labels: np.ndarray,
                      min_per_class: int = 1) -> LabelIssues:
    """Flags images whose given label the out-of-fold model confidently contradicts.

    Args:
        probs: out-of-fold probabilities ``[n, classes]``.
        labels: the given class of each image.
        min_per_class: never flag so many of a class that fewer than this would remain.

    Returns:
        The flagged images and, for every image, a suggested class and a score.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = probs.shape
    rows = np.arange(n)
    thresholds = per_class_thresholds(probs, labels)
    joint = calibrate(confident_joint(probs, labels, thresholds), labels)
    flag = np.zeros(n, dtype=bool)
    for i in range(k):
        members = np.flatnonzero(labels == i)
        budget = max(0, len(members) - min_per_class)
        for j in range(k):
            take = min(round(float(joint[i, j])), budget) if i != j else 0
            if take <= 0:
                continue
            budget -= take
            margin = probs[members, j] - probs[members, i]
            flag[members[np.argsort(-margin, kind="stable")[:take]]] = True
    flag &= probs.argmax(axis=1) != labels
    score = 1.0 - probs[rows, labels]
    flagged = np.flatnonzero(flag)
    flagged = flagged[np.argsort(-score[flagged], kind="stable")]
    return LabelIssues(flagged, suggest_classes(probs, labels, joint), score, thresholds,
                       joint)


def suggest_classes(probs: np.ndarray, labels: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """The most likely true class other than the given one, for every image.

    The model's probability of each class is weighed by how often images of that class
    carry this given label, estimated by the joint (``P(given = i | true = j)``): a
    systematic mix-up, such as tulips filed under roses, makes its source class the
    suggestion when the model hesitates between two others.
    """
    k = probs.shape[1]
    column = joint.sum(axis=0, keepdims=True)
    # Every pair keeps a little weight, so a mix-up the joint has not seen can still win.
    channel = (joint + 0.5) / (column + 0.5 * k)
    weighted = probs * channel[labels]
    weighted[np.arange(len(labels)), labels] = -1.0
    out: np.ndarray = weighted.argmax(axis=1)
    return out
