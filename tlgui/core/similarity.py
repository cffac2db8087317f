"""Comparing images by their features: near-duplicates, outliers and nearest neighbours.

Features are L2-normalised, so a dot product is the cosine similarity. The similarity
matrix is computed a block of rows at a time, so memory stays at ``block x n`` floats
whatever the size of the dataset.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlgui.core.errors import Cancelled

# Similarities held at once: about this many floats per matrix, whatever the dataset size.
BLOCK_FLOATS = 2**22
# Neighbours per class whose mean similarity says how typical of that class an image is.
TYPICAL_NEIGHBOURS = 20
# Modified z-score (Iglewicz and Hoaglin) of untypicality above which an image counts as
# an outlier; 3.0 rather than the textbook 3.5, measured in ADR 005.
OUTLIER_Z = 3.0
# Nearest neighbours kept per image: the votes of ``VOTERS`` of them, after leaving out
# the image's own copies.
NEIGHBOURS = 16
VOTERS = 10


def _blocks(n: int, cancel: threading.Event | None) -> Iterator[slice]:
    step = max(16, min(1024, BLOCK_FLOATS // max(1, n)))
    for start in range(0, n, step):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Audit cancelled.")
        yield slice(start, min(n, start + step))


@dataclass(frozen=True)
class PairScan:
    """What comparing every image with every other gave, per image.

    Attributes:
        nearest: the row of the most similar other image (by features).
        nearest_similarity: its cosine similarity.
        twin: the row of the image that is most likely the same photo (-1 if none).
        twin_thumbnail: thumbnail correlation with the twin (the best centre pairing).
        twin_feature: feature similarity with the twin.
        typicality: how much each image looks like the class it looks most like: for
            every class, the mean similarity to that class's ``TYPICAL_NEIGHBOURS``
            nearest images (the image itself left out); the largest over classes. A
            class with two looks (white and pink roses) keeps both typical, which a
            single class centre would not, and a handful of odd files in one class
            cannot make each other typical.
        neighbours: rows of the ``NEIGHBOURS`` most similar other images, nearest first.
    """

    nearest: np.ndarray
    nearest_similarity: np.ndarray
    twin: np.ndarray
    twin_thumbnail: np.ndarray
    twin_feature: np.ndarray
    typicality: np.ndarray
    neighbours: np.ndarray


def _thumbnail_similarity(thumbs: Sequence[np.ndarray], rows: slice) -> np.ndarray:
    """Best correlation of the rows' thumbnails with everyone's: whole against whole,
    and whole against each centre both ways (a slightly cropped copy)."""
    whole = thumbs[0]
    best: np.ndarray = whole[rows] @ whole.T
    for centre in thumbs[1:]:
        np.maximum(best, whole[rows] @ centre.T, out=best)
        np.maximum(best, centre[rows] @ whole.T, out=best)
    return best


def scan_pairs(features: np.ndarray, thumbs: Sequence[np.ndarray], labels: np.ndarray,
               num_classes: int, thumbnail_threshold: float, feature_floor: float,
               cancel: threading.Event | None = None) -> PairScan:
    """Compares every image with every other, a block of rows at a time.

    Args:
        features: L2-normalised features ``[n, dims]``.
        thumbs: zero-mean unit-norm thumbnails, whole image first, then centres.
        labels: given class per image.
        num_classes: number of classes.
        thumbnail_threshold: a twin's thumbnails correlate at least this much...
        feature_floor: ...and its features are at least this similar.
        cancel: checked between blocks.
    """
    n = len(features)
    nearest = np.full(n, -1, dtype=np.int64)
    nearest_sim = np.full(n, -1.0, dtype=np.float32)
    twin = np.full(n, -1, dtype=np.int64)
    twin_thumb = np.zeros(n, dtype=np.float32)
    twin_feat = np.zeros(n, dtype=np.float32)
    typical = np.full(n, -1.0, dtype=np.float32)
    keep = min(NEIGHBOURS, max(1, n - 1))
    neighbours = np.zeros((n, keep), dtype=np.int64)
    members = [np.flatnonzero(labels == c) for c in range(num_classes)]
    for rows in _blocks(n, cancel):
        here = np.arange(rows.stop - rows.start)
        sim = features[rows] @ features.T
        sim[here, np.arange(rows.start, rows.stop)] = -np.inf
        part = np.argpartition(-sim, keep - 1, axis=1)[:, :keep]
        order = np.argsort(-np.take_along_axis(sim, part, axis=1), axis=1, kind="stable")
        neighbours[rows] = np.take_along_axis(part, order, axis=1)
        nearest[rows] = neighbours[rows, 0]
        nearest_sim[rows] = sim[here, nearest[rows]]
        thumb = _thumbnail_similarity(thumbs, rows)
        candidate = np.where((thumb >= thumbnail_threshold) & (sim >= feature_floor),
                             thumb, -np.inf)
        best = candidate.argmax(axis=1)
        found = np.isfinite(candidate[here, best])
        twin[rows] = np.where(found, best, -1)
        twin_thumb[rows] = np.where(found, thumb[here, best], 0.0)
        twin_feat[rows] = np.where(found, sim[here, best], 0.0)
        for cls in members:
            if len(cls) < 2:
                continue
            k = min(TYPICAL_NEIGHBOURS, len(cls) - 1)
            top = -np.partition(-sim[:, cls], k - 1, axis=1)[:, :k]
            # The image itself is -inf in its own class: average its k-1 finite ones.
            top = np.where(np.isfinite(top), top, np.nan)
            np.fmax(typical[rows], np.nanmean(top, axis=1), out=typical[rows])
    return PairScan(nearest, nearest_sim, twin, twin_thumb, twin_feat, typical, neighbours)


def neighbour_votes(neighbours: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                    num_classes: int, voters: int = VOTERS, prior: float = 0.2) -> np.ndarray:
    """Class probabilities from the labels of each image's nearest other images.

    The image's own copies (same group) are left out, as the folds leave them out of
    the head's training. Each class starts from ``prior`` votes, so a class no
    neighbour has keeps a little probability.

    Returns:
        ``[n, classes]`` probabilities.
    """
    n = len(labels)
    votes = np.full((n, num_classes), prior, dtype=np.float64)
    counted = np.zeros(n, dtype=np.int64)
    for col in range(neighbours.shape[1]):
        other = neighbours[:, col]
        use = (groups[other] != groups) & (counted < voters)
        np.add.at(votes, (np.flatnonzero(use), labels[other[use]]), 1.0)
        counted += use
    out: np.ndarray = votes / votes.sum(axis=1, keepdims=True)
    return out


def file_digests(paths: Sequence[Path], sizes: Sequence[int]) -> dict[int, str]:
    """Content hashes of the files that share their size with another (others differ)."""
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, size in enumerate(sizes):
        by_size[size].append(i)
    def digest(i: int, limit: int | None) -> str | None:
        try:
            with paths[i].open("rb") as fh:
                data = fh.read() if limit is None else fh.read(limit)
        except OSError:
            return None
        return hashlib.blake2b(data, digest_size=16).hexdigest()

    out: dict[int, str] = {}
    for group in by_size.values():
        if len(group) < 2:
            continue
        # Files of one size (raw formats often share it) are told apart by their first
        # 64 KiB; only those that agree there are read whole.
        by_head: dict[str, list[int]] = defaultdict(list)
        for i in group:
            head = digest(i, 2**16)
            if head is not None:
                by_head[head].append(i)
        for same in by_head.values():
            for i in same if len(same) > 1 else []:
                full = digest(i, None)
                if full is not None:
                    out[i] = full
    return out


@dataclass(frozen=True)
class DuplicatePair:
    """Two images that are the same file, or the same photo re-encoded, resized or cropped.

    Attributes:
        first: row of one image.
        second: row of the other.
        similarity: thumbnail correlation (1.0 for identical files).
        feature_similarity: cosine similarity of their features.
        exact: the files hold the same bytes.
    """

    first: int
    second: int
    similarity: float
    feature_similarity: float
    exact: bool


def find_duplicates(scan: PairScan, features: np.ndarray, paths: Sequence[Path],
                    sizes: Sequence[int]) -> list[DuplicatePair]:
    """Identical files, and each image with its twin from ``scan_pairs``; an image is
    paired with its closest twin only, so a burst of near-identical shots gives about one
    row per shot, not one per pair."""
    pairs: dict[tuple[int, int], DuplicatePair] = {}
    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, digest in file_digests(paths, sizes).items():
        by_digest[digest].append(i)
    for same in by_digest.values():
        for other in same[1:]:
            pairs[(same[0], other)] = DuplicatePair(
                same[0], other, 1.0, float(features[same[0]] @ features[other]), True)
    for row in np.flatnonzero(scan.twin >= 0).tolist():
        j = int(scan.twin[row])
        key = (min(row, j), max(row, j))
        if key not in pairs:
            pairs[key] = DuplicatePair(key[0], key[1], float(scan.twin_thumbnail[row]),
                                       float(scan.twin_feature[row]), False)
    return sorted(pairs.values(), key=lambda p: (-p.similarity, p.first, p.second))


def duplicate_groups(n: int, pairs: Sequence[DuplicatePair]) -> np.ndarray:
    """A group number per row: rows linked by pairs (directly or not) share one."""
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for p in pairs:
        a, b = root(p.first), root(p.second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    out: np.ndarray = np.array([root(i) for i in range(n)], dtype=np.int64)
    return out


def outlier_scores(typicality: np.ndarray) -> np.ndarray:
    """Modified z-scores of how far below the usual typicality each image lies."""
    med = float(np.median(typicality))
    mad = float(np.median(np.abs(typicality - med)))
    scale = 1.4826 * mad if mad > 0 else 1e-6
    out: np.ndarray = (med - typicality) / scale
    return out


def nearest_of_class(features: np.ndarray, labels: np.ndarray, row: int, label: int,
                     k: int = 6, exclude: Sequence[int] = ()) -> list[tuple[int, float]]:
    """The ``k`` images of class ``label`` most similar to image ``row``.

    Returns:
        (row, similarity) pairs, most similar first; ``row`` itself and ``exclude``
        are left out.
    """
    members = np.flatnonzero(labels == label)
    skip = {row, *exclude}
    members = np.array([m for m in members if int(m) not in skip], dtype=np.int64)
    if not len(members):
        return []
    sims = features[members] @ features[row]
    order = np.argsort(-sims, kind="stable")[:k]
    return [(int(members[i]), float(sims[i])) for i in order]
