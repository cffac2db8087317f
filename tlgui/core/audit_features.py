"""The audit's one pass over the images: frozen backbone features and pixel statistics.

Images come through the pixel cache (decoded once, shared with training at the same size)
and the frozen backbone of ``frozen_features``, exactly as phase 1 of training computes
them; the pixels are looked at on their way to the backbone for the blank-frame check, so
no second read is needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tlgui.core import backbones
from tlgui.core import frozen_features as ff
from tlgui.core.config import AugmentConfig, TrainConfig
from tlgui.core.dataset import Problem, Sample
from tlgui.core.events import Report
from tlgui.core.model import ClassifierModel
from tlgui.core.oom import with_oom_retry
from tlgui.core.pixel_cache import PixelCache, PixelChunk, fill_cache
from tlgui.core.spill import gather

# keras.applications' own input size, where the ImageNet weights were trained: measured
# better for finding label errors (ADR 005), and since ADR 013 tlgui's training default too.
NATIVE_SIZES = {"MobileNetV2": 224}
# Every 4th pixel in both directions is plenty to tell a blank frame.
_STAT_STRIDE = 4
# Grey thumbnails for spotting the same photo re-encoded, resized or cropped: GRID x GRID
# cells of the whole image and of its centre (a copy cropped by 5% or 10% on each side
# matches the original's centre 90% or 80%).
THUMB_GRID = 16
THUMB_CENTRES = (1.0, 0.9, 0.8)


def audit_image_size(config: TrainConfig, image_size: int | None = None) -> int:
    """The side the audit looks at images at.

    Args:
        config: the training settings (its backbone).
        image_size: an explicit size, which wins.

    Returns:
        ``image_size`` when given, else the backbone's ImageNet size (224 for
        MobileNetV2, whatever ``config.image_size`` says), else tlgui's default.
    """
    if image_size:
        return int(image_size)
    spec = backbones.get(config.backbone)
    return NATIVE_SIZES.get(spec.name, config.image_size or spec.default_size)


@dataclass(frozen=True)
class FeaturePass:
    """What one pass over the images gave.

    Attributes:
        samples: the images that could be read, in the order of the rows below.
        features: pooled backbone features, L2-normalised, float32 ``[n, dims]``.
        pixel_spread: per image, the largest standard deviation of a colour channel
            (0..255 scale): near 0 for a blank frame.
        thumbnails: per centre fraction of ``THUMB_CENTRES``, a grey thumbnail per image,
            zero-mean and unit-norm ``[n, THUMB_GRID**2]``: a dot product of two is
            their correlation.
        problems: the files that could not be read, and why.
        image_size: the side the images were resized to.
        seconds: wall time of ``model`` (building the backbone), ``decode`` (filling
            the pixel cache) and ``features`` (the backbone pass).
    """

    samples: tuple[Sample, ...]
    features: np.ndarray
    pixel_spread: np.ndarray
    thumbnails: tuple[np.ndarray, ...]
    problems: tuple[Problem, ...]
    image_size: int
    seconds: dict[str, float]


def _spread(pixels: np.ndarray) -> np.ndarray:
    sub = pixels[:, ::_STAT_STRIDE, ::_STAT_STRIDE, :].astype(np.float32)
    out: np.ndarray = sub.reshape(len(sub), -1, 3).std(axis=1).max(axis=1)
    return out


def _box_weights(size: int, grid: int, centre: float) -> np.ndarray:
    """``[grid, size]`` weights averaging the central ``centre`` of a side into cells."""
    low = size * (1.0 - centre) / 2
    edges = np.linspace(low, size - low, grid + 1)
    pos = np.arange(size, dtype=np.float64)
    # Overlap of pixel [x, x+1) with cell [a, b): exact box averaging, fractions included.
    overlap = np.clip(np.minimum(edges[1:, None], pos + 1) - np.maximum(edges[:-1, None], pos),
                      0.0, None)
    out: np.ndarray = (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def thumbnails(pixels: np.ndarray) -> list[np.ndarray]:
    """Zero-mean, unit-norm grey thumbnails of ``uint8 [n, S, S, 3]`` images, one array
    per centre fraction of ``THUMB_CENTRES``."""
    grey = pixels.astype(np.float32).mean(axis=-1)
    out = []
    for centre in THUMB_CENTRES:
        w = _box_weights(pixels.shape[1], THUMB_GRID, centre)
        t = np.einsum("gi,nij,hj->ngh", w, grey, w, optimize=True).reshape(len(grey), -1)
        t -= t.mean(axis=1, keepdims=True)
        t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-6)
        out.append(t.astype(np.float32))
    return out


def _with_statistics(images: ff.Images, spread: np.ndarray,
                     thumbs: list[np.ndarray]) -> ff.Images:
    """The same images, recording each one's spread and thumbnails as it streams past."""
    def chunks() -> Iterator[PixelChunk]:
        for chunk in images.chunks():
            if len(chunk.indices):
                spread[chunk.indices] = _spread(chunk.pixels)
                for store, t in zip(thumbs, thumbnails(chunk.pixels), strict=True):
                    store[chunk.indices] = t
            yield chunk

    return ff.Images(images.n, chunks, images.subset)


def compute_features(
    samples: Sequence[Sample],
    class_names: tuple[str, ...],
    config: TrainConfig,
    image_size: int,
    cache: PixelCache,
    report: Report,
    cancel: threading.Event,
) -> FeaturePass:
    """Decodes what the cache lacks and runs the frozen backbone once over every image.

    Args:
        samples: the images.
        class_names: the dataset's classes (the model needs an output per class).
        config: backbone, weights and weights folder; nothing else is used.
        image_size: the side images are resized to.
        cache: the pixel cache.
        report: receives ``StageProgress`` for decoding and features.
        cancel: checked between images while decoding and between batches after.

    Raises:
        Cancelled: ``cancel`` was set.
        WeightsNotFound, ConfigError: the backbone cannot be built.
    """
    t0 = time.monotonic()
    cfg = config.replace(image_size=image_size, augment=AugmentConfig(mode="off"))
    cm = ClassifierModel.build(cfg, class_names)
    t1 = time.monotonic()
    bad = fill_cache(samples, image_size, cache, report, cancel) if cache.enabled else []
    t2 = time.monotonic()
    dropped = {p.path for p in bad}
    kept = [s for s in samples if s.path not in dropped]
    spread = np.zeros(len(kept), dtype=np.float32)
    thumbs = [np.zeros((len(kept), THUMB_GRID**2), np.float32) for _ in THUMB_CENTRES]
    images = _with_statistics(ff.Images.of_samples(kept, image_size, cache, cancel), spread,
                              thumbs)
    net = ff.feature_model(cm.backbone, None)
    feats = with_oom_retry(
        lambda b: ff.extract(cm, images, [0], None, b, report, cancel,
                             label="all images", net=net),
        ff.FEATURE_BATCH, report, "computing features")
    problems = list(bad) + list(feats.problems)
    rows = np.flatnonzero(feats.kept)
    assert feats.pooled is not None
    pooled = gather(feats.pooled, 0, rows).astype(np.float64)  # in memory: no store
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    unit = np.divide(pooled, norms, out=np.zeros_like(pooled), where=norms > 0)
    unit = unit.astype(np.float32)
    seconds = {"model": t1 - t0, "decode": t2 - t1, "features": time.monotonic() - t2}
    return FeaturePass(tuple(kept[i] for i in rows), unit, spread[rows],
                       tuple(t[rows] for t in thumbs), tuple(problems), image_size, seconds)
