"""Reading a large confusion matrix: which classes go wrong, and into what.

With 500 classes the matrix itself (250,000 cells) cannot be read; what a user needs is
the list of the most frequent mistakes (true class, predicted class, how many, what
share of the true class) and the classes that go wrong most. Plain numpy, so that the
window and the command line can share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """One off-diagonal cell of a confusion matrix.

    Attributes:
        true_label: index of the images' class.
        predicted_label: index of the class the model chose instead.
        count: images of ``true_label`` predicted as ``predicted_label``.
        share: ``count`` over all images of ``true_label`` (0 to 1).
    """

    true_label: int
    predicted_label: int
    count: int
    share: float


def mistakes_per_class(confusion: np.ndarray) -> np.ndarray:
    """Images of each class (row) predicted as another class: row total minus diagonal."""
    matrix = np.asarray(confusion, dtype=np.int64)
    return np.asarray(matrix.sum(axis=1) - np.diag(matrix), dtype=np.int64)


def top_confusions(confusion: np.ndarray, limit: int | None = None,
                   classes: Sequence[int] | None = None) -> list[Confusion]:
    """The off-diagonal cells with images in them, most images first.

    Ties go to the larger share of the true class, then to label order, so that the
    list is the same every time.

    Args:
        confusion: counts [true class, predicted class].
        limit: at most this many (None: all).
        classes: only cells whose true or predicted class is one of these (None: all).

    Returns:
        The confusions, most frequent first.
    """
    matrix = np.asarray(confusion, dtype=np.int64)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    if classes is not None:
        keep = np.zeros(len(matrix), dtype=bool)
        keep[np.asarray(list(classes), dtype=np.int64)] = True
        off[~keep[:, None] & ~keep[None, :]] = 0
    rows, cols = np.nonzero(off)
    counts = off[rows, cols]
    totals = matrix.sum(axis=1)[rows]
    shares = counts / np.maximum(totals, 1)
    # lexsort: the last key is the first criterion.
    order = np.lexsort((cols, rows, -shares, -counts))
    if limit is not None:
        order = order[:limit]
    return [Confusion(int(rows[k]), int(cols[k]), int(counts[k]), float(shares[k]))
            for k in order]


def matching_classes(names: Sequence[str], text: str) -> list[int]:
    """Indexes of the class names that contain every word of ``text`` (any case).

    An empty ``text`` matches every class.
    """
    words = text.casefold().split()
    return [i for i, name in enumerate(names)
            if all(w in name.casefold() for w in words)]
