"""Computing the frozen part of the network once, and training only what is trainable.

With the backbone called in inference mode, the layers below the first trainable one map
an image to the same tensor in every epoch, so it is computed once per fixed view and
each epoch runs only the trainable top.

- Phase 1 (backbone frozen) trains the head on the pooled features of the images as they
  are (view 0). One pass computes those and the tensor at the phase-2 cut.
- Phase 2 trains its first epoch on view 0 and then computes the further views (the
  mirror, seeded random augmentations) with the same network; from its second epoch on,
  every image shows one random view to the top of the backbone. Mirrors pay in
  fine-tuning, where the model can still learn from them; for a linear head on frozen
  features they add little and would double phase 1 (see docs/benchmarks.md, ADR 003).

Images stream from the pixel cache a chunk at a time; the features stay in memory up to
a budget and spill to a file above it (``spill.FeatureStore``), so a run's memory does
not grow with the dataset. The trainer models reuse the classifier's layer objects:
training them trains it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tlgui.core.dataset import Problem, Sample
from tlgui.core.distribution import predict_batch
from tlgui.core.errors import Cancelled
from tlgui.core.events import Report, StageProgress
from tlgui.core.model import ClassifierModel, make_inference_backbone_trainer
from tlgui.core.pixel_cache import PixelCache, PixelChunk, iter_pixels
from tlgui.core.spill import (
    FeatureArray,
    FeatureStore,
    gather,
    put,
    select_rows,
    select_views,
)

PyDataset: Any = keras.utils.PyDataset
# Images per forward pass of the frozen network. The memory TensorFlow keeps after the
# first passes grows with the batch (MobileNetV2 at 160 px: +154 MB at 16, +298 MB at 32)
# while a CPU runs as fast at 16 as at 32 (3.1 against 3.3 ms per image; 4.1 at 8).
FEATURE_BATCH = 16
# Pixels read ahead of the backbone: about two chunks of this size are in memory at once.
CHUNK_BYTES = 8 * 2**20


def _producer(tensor: Any) -> Any:
    return tensor._keras_history.operation


def boundaries(backbone: Any) -> list[int]:
    """Every index ``k`` where one tensor links ``backbone.layers[:k]`` to the rest.

    At such an index ``layers[:k]`` depend on nothing above, and their only output used
    above is ``layers[k - 1].output``: the network can be cut there without splitting a
    residual connection. Index 1 (right after the input) is always one.
    """
    layers = backbone.layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    # last[i] = highest index of a layer consuming layer i's output.
    last = list(range(len(layers)))
    for i, layer in enumerate(layers):
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                j = index.get(id(_producer(t)))
                if j is not None:
                    last[j] = max(last[j], i)
    out = [1]
    reach = -1  # the highest consumer of any layer below k - 1
    for k in range(2, len(layers)):
        reach = max(reach, last[k - 2])
        if reach < k:
            out.append(k)
    return out


def find_cut(backbone: Any, first_trainable: int) -> int:
    """The largest boundary index ``k <= first_trainable`` (see ``boundaries``)."""
    limit = min(first_trainable, len(backbone.layers) - 1)
    return max((k for k in boundaries(backbone) if k <= limit), default=1)


def top_part(backbone: Any, cut: int) -> Any:
    """The backbone from the tensor at ``cut`` to its output, as a model of its own."""
    if cut <= 1:
        return backbone
    return keras.Model(backbone.layers[cut - 1].output, backbone.output, name="trainable_top")


def feature_model(backbone: Any, cut: int | None) -> Any:
    """backbone input -> [pooled output, the tensor at ``cut`` (when given)].

    One network serves phase 1 and the phase-2 views: its compiled graph and the weight
    layouts oneDNN prepares for it stay in memory once used, so a second network for
    the layers below the cut alone would cost more memory than its smaller pass saves.
    """
    outputs = [keras.layers.GlobalAveragePooling2D(name="features_pool")(backbone.output)]
    if cut:
        outputs.append(backbone.layers[cut - 1].output)
    return keras.Model(backbone.inputs, outputs, name="frozen_features")


@dataclass
class Images:
    """Images to run through the backbone: ``n`` of them, read in chunks by ``chunks()``.

    Streaming them keeps only a chunk of pixels in memory next to the features.
    ``subset(rows)`` gives the same source for some of the images only.
    """

    n: int
    chunks: Callable[[], Iterator[PixelChunk]]
    subset: Callable[[np.ndarray], Images]

    def select(self, rows: np.ndarray) -> Images:
        """These images only (``rows`` index this source)."""
        return self if len(rows) == self.n else self.subset(rows)

    @classmethod
    def of_samples(cls, samples: Sequence[Sample], size: int, cache: PixelCache,
                   cancel: threading.Event | None = None) -> Images:
        """Images read through the pixel cache, the next chunk while one is computed."""
        samples = list(samples)
        # Whole batches of 64 (and of its halves) per chunk: no ragged batch mid-stream.
        chunk = max(64, CHUNK_BYTES // (size * size * 3) // 64 * 64)
        return cls(len(samples),
                   lambda: iter_pixels(samples, size, cache, chunk, cancel),
                   lambda rows: cls.of_samples([samples[i] for i in rows], size, cache, cancel))


@dataclass
class FeatureSet:
    """Cached tensors per view: ``pooled`` [V, N, C] and ``cut`` [V, N, ...] (or None),
    each in memory or spilled to disk (``spill.FeatureArray``).

    ``kept`` marks the images that could be read; rows of the others are zeros and
    ``problems`` says why.
    """

    pooled: FeatureArray | None
    cut: FeatureArray | None
    kept: np.ndarray
    problems: list[Problem]

    def select(self, rows: np.ndarray) -> FeatureSet:
        """The same features for these image rows only."""
        if len(rows) == len(self.kept):
            return self
        return FeatureSet(
            None if self.pooled is None else select_rows(self.pooled, rows),
            None if self.cut is None else select_rows(self.cut, rows),
            self.kept[rows], self.problems)


def _view_batch(cm: ClassifierModel, pixels: np.ndarray, view: int, seed: int) -> Any:
    """Float pixels of one view of a batch, before preprocessing."""
    x = pixels.astype(np.float32)
    if view == 0:
        return x
    if view == 1:
        return x[:, :, ::-1, :].copy()
    aug = cm.layer("augmentation")
    if aug is None:
        return x
    return aug(x, training=True)


def _preprocess(cm: ClassifierModel, x: Any) -> Any:
    """Runs the model's preprocessing layers (those between augmentation and backbone)."""
    for layer in cm.model.layers:
        if layer.name.startswith("preprocess"):
            x = layer(x)
    return x


def extract(
    cm: ClassifierModel,
    images: Images,
    views: Sequence[int],
    cut: int | None,
    batch_size: int,
    report: Report,
    cancel: threading.Event,
    seed: int = 0,
    label: str = "train",
    pooled: bool = True,
    cut_slots: int = 0,
    net: Any | None = None,
    store: FeatureStore | None = None,
    cut_into: FeatureArray | None = None,
    first_slot: int = 0,
) -> FeatureSet:
    """Runs the frozen backbone once per view over ``images``.

    Args:
        cm: the classifier.
        images: the images at the model's size.
        views: which views to compute (0 = the image, 1 = its mirror, 2... = seeded
            random augmentations); the result holds them in this order.
        cut: also keep the tensor at this backbone layer index (phase 2), or None.
        batch_size: images per forward pass.
        report: receives ``StageProgress("features", ...)``.
        cancel: checked between batches.
        seed: seed of the random views.
        label: shown in progress messages.
        pooled: keep the pooled backbone output too.
        cut_slots: room for this many views in the cut array (default ``len(views)``),
            so that later views go in without a copy; unused slots take no memory until
            written (the array is allocated lazily by the OS).
        net: the ``feature_model`` for this cut, when the caller keeps one.
        store: allocates the result arrays (spilling to disk above its budget); default:
            in memory.
        cut_into: write the cut tensors into this array, at slots ``first_slot`` on,
            instead of a new one (the result's ``cut`` is then this array).
        first_slot: the slot of ``views[0]`` in ``cut_into``.
    """
    if net is None and (pooled or (cut is not None and cut > 1)):
        net = feature_model(cm.backbone, cut)
    n, nv = images.n, len(views)
    out_pooled: FeatureArray | None = None
    out_cut: FeatureArray | None = cut_into
    if store is None:
        store = FeatureStore(budget=2**62)  # everything in memory: nothing to close
    kept = np.zeros(n, dtype=bool)
    problems: list[Problem] = []
    total = max(1, nv * math.ceil(n / batch_size))
    done = 0
    last = 0.0
    keras.utils.set_random_seed(seed)
    for chunk in images.chunks():
        problems.extend(chunk.problems)
        kept[chunk.indices] = True
        for start in range(0, len(chunk.indices), batch_size):
            rows = chunk.indices[start:start + batch_size]
            px = chunk.pixels[start:start + batch_size]
            k = len(rows)
            if k < batch_size:
                # A ragged batch would compile the network again for its shape (a second
                # or more on a CPU); zeros fill it up and their outputs are dropped.
                px = np.concatenate([px, np.zeros((batch_size - k, *px.shape[1:]), px.dtype)])
            for slot, v in enumerate(views):
                if cancel.is_set():
                    raise Cancelled("Feature computation cancelled.")
                x = _preprocess(cm, _view_batch(cm, px, v, seed))
                if net is None:  # the cut is the input itself: nothing to run
                    outs = [None, np.asarray(x)]
                else:
                    # predict_on_batch runs a compiled graph: an eager call of the backbone
                    # holds about five times the memory (1.5 GB against 0.3 GB, MobileNetV2).
                    got = predict_batch(net, x)  # split over the devices of a parallel run
                    outs = list(got) if isinstance(got, (list, tuple)) else [got]
                if pooled:
                    feat = np.asarray(outs[0])[:k]
                    if out_pooled is None:
                        out_pooled = store.zeros((nv, n, feat.shape[-1]), np.float32,
                                                 f"{label[:5]}-pooled")
                    put(out_pooled, slot, rows, feat)
                if cut:
                    mid = np.asarray(outs[-1])[:k]
                    if out_cut is None:
                        out_cut = store.zeros((max(nv, cut_slots), n, *mid.shape[1:]),
                                              np.float16, f"{label[:5]}-cut")
                    put(out_cut, first_slot + slot, rows, mid)
                done += 1
                now = time.monotonic()
                if now - last > 0.1:
                    last = now
                    report(StageProgress("features", min(done, total - 1), total,
                                         f"Computing frozen features ({label})"))
    if cancel.is_set():
        raise Cancelled("Feature computation cancelled.")
    report(StageProgress("features", total, total, f"Computing frozen features ({label})"))
    return FeatureSet(out_pooled, out_cut, kept, problems)


class ViewBatches(PyDataset):  # type: ignore[misc]
    """Batches from cached views: each epoch every image shows one random view.

    Views are drawn among the first ``available`` ones, when an epoch's first batch is
    asked for, so views computed between epochs are used from the next epoch on. An epoch
    goes ``passes`` times over the images, each time in a new order (a small set's epoch
    would otherwise be one or two optimizer steps).
    """

    def __init__(self, feats: FeatureArray, labels: np.ndarray, classes: int,
                 weights: np.ndarray | None, batch_size: int, shuffle: bool, seed: int,
                 available: int | None = None, passes: int = 1) -> None:
        super().__init__()
        self.feats = feats
        # Labels as integers, one-hot a batch at a time: 100,000 images of 500 classes
        # would hold 200 MB of one-hot rows.
        self.y = labels
        self.classes = classes
        self.w = weights
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.available = feats.shape[0] if available is None else available
        self.passes = max(1, passes)
        self.epoch = 0
        self._order = np.arange(len(labels))
        self._views: np.ndarray | None = None
        self._reshuffle()

    def _reshuffle(self) -> None:
        rng = np.random.default_rng(self.seed + self.epoch)
        n = len(self.y)
        self._order = np.concatenate([rng.permutation(n) for _ in range(self.passes)]) \
            if self.shuffle else np.tile(np.arange(n), self.passes)
        self._views = None

    def views_of_epoch(self) -> np.ndarray:
        """The view each image shows this epoch (drawn on first use)."""
        if self._views is None:
            n = len(self.y)
            rng = np.random.default_rng([self.seed, self.epoch, 1])
            self._views = rng.integers(0, self.available, size=n) if self.shuffle \
                else np.zeros(n, dtype=np.int64)
        return self._views

    def __len__(self) -> int:
        return math.ceil(len(self._order) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        x = gather(self.feats, self.views_of_epoch()[idx], idx).astype(np.float32)
        y = one_hot(self.y[idx], self.classes)
        if self.w is None:
            return x, y
        return x, y, self.w[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._reshuffle()


def one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    """Integer labels as one-hot float32 rows."""
    out: np.ndarray = np.eye(n, dtype=np.float32)[labels]
    return out


def single_view(arr: FeatureArray, view: int = 0) -> FeatureArray:
    """One view of a feature array, still ``[1, N, ...]``."""
    return select_views(arr, [view])


def head_trainer(cm: ClassifierModel) -> Any:
    """pooled features -> the classifier's own Dropout and Dense layers."""
    return make_inference_backbone_trainer(
        [], None, [cm.model.get_layer("dropout"), cm.head], "head_trainer")


def top_trainer(cm: ClassifierModel, cut: int) -> Any:
    """cut tensor -> the backbone's top (inference mode) -> pool -> dropout -> Dense."""
    return make_inference_backbone_trainer(
        [], top_part(cm.backbone, cut),
        [cm.model.get_layer("pool"), cm.model.get_layer("dropout"), cm.head], "top_trainer")
