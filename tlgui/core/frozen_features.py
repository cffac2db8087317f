"""Computing the frozen part of the network once, and training only what is trainable.

With the backbone called in inference mode, the layers below the first trainable one map
an image to the same tensor in every epoch. For a few fixed views of each image (the
image, its mirror, seeded random augmentations) that tensor is computed once; each epoch
then picks one view per image and runs only the trainable top. Phase 1 (backbone
frozen) trains on pooled features; phase 2 on the tensor at a cut below ``fine_tune_at``.
The trainer models reuse the classifier's layer objects, so training them trains it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tlgui.core.errors import Cancelled
from tlgui.core.events import Report, StageProgress
from tlgui.core.model import ClassifierModel, make_inference_backbone_trainer

PyDataset: Any = keras.utils.PyDataset


def _producer(tensor: Any) -> Any:
    return tensor._keras_history.operation


def find_cut(backbone: Any, first_trainable: int) -> int:
    """The largest layer index ``k <= first_trainable`` where one tensor links the parts.

    ``backbone.layers[:k]`` then depend on nothing above, and their only output used
    above is ``backbone.layers[k - 1].output``. Index 1 (right after the input) is
    always valid.
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
    for k in range(min(first_trainable, len(layers) - 1), 1, -1):
        # Valid when no layer below k-1 feeds a layer at or above k.
        if all(last[j] < k for j in range(k - 1)):
            return k
    return 1


def top_part(backbone: Any, cut: int) -> Any:
    """The backbone from the tensor at ``cut`` to its output, as a model of its own."""
    if cut <= 1:
        return backbone
    return keras.Model(backbone.layers[cut - 1].output, backbone.output, name="trainable_top")


def _feature_model(backbone: Any, cut: int | None) -> Any:
    """backbone input -> [pooled output, the tensor at ``cut`` (when given)]."""
    pooled = keras.layers.GlobalAveragePooling2D(name="features_pool")(backbone.output)
    outputs = [pooled]
    if cut:
        outputs.append(backbone.layers[cut - 1].output)
    return keras.Model(backbone.inputs, outputs, name="frozen_features")


@dataclass
class FeatureSet:
    """Cached tensors per view: ``pooled`` [V, N, C] and ``cut`` [V, N, ...] (or None)."""

    pooled: np.ndarray
    cut: np.ndarray | None


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
    pixels: np.ndarray,
    views: int,
    cut: int | None,
    batch_size: int,
    report: Report,
    cancel: threading.Event,
    seed: int = 0,
    label: str = "train",
) -> FeatureSet:
    """Runs the frozen backbone once per view over ``pixels``.

    Args:
        cm: the classifier.
        pixels: uint8 [N, S, S, 3] at the model's size.
        views: number of views (1 = the images only).
        cut: also keep the tensor at this backbone layer index (phase 2), or None.
        batch_size: images per forward pass.
        report: receives ``StageProgress("features", ...)``.
        cancel: checked between batches.
        seed: seed of the random views.
        label: shown in progress messages.
    """
    feature_model = _feature_model(cm.backbone, cut)
    n = len(pixels)
    pooled: np.ndarray | None = None
    cut_feats: np.ndarray | None = None
    total = views * math.ceil(n / batch_size)
    done = 0
    last = 0.0
    keras.utils.set_random_seed(seed)
    for v in range(views):
        for start in range(0, n, batch_size):
            if cancel.is_set():
                raise Cancelled("Feature computation cancelled.")
            x = _preprocess(cm, _view_batch(cm, pixels[start:start + batch_size], v, seed))
            # predict_on_batch runs a compiled graph: an eager call of the backbone holds
            # about five times the memory (1.5 GB against 0.3 GB for MobileNetV2).
            outs = feature_model.predict_on_batch(x)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            feat = np.asarray(outs[0])
            if pooled is None:
                pooled = np.empty((views, n, feat.shape[-1]), dtype=np.float32)
            pooled[v, start:start + len(feat)] = feat
            if cut:
                mid = np.asarray(outs[1])
                if cut_feats is None:
                    cut_feats = np.empty((views, n, *mid.shape[1:]), dtype=np.float16)
                cut_feats[v, start:start + len(mid)] = mid
            done += 1
            now = time.monotonic()
            if now - last > 0.1 or done == total:
                last = now
                report(StageProgress("features", done, total,
                                     f"Computing frozen features ({label}, view {v + 1}/{views})"))
    assert pooled is not None
    return FeatureSet(pooled, cut_feats)


class ViewBatches(PyDataset):  # type: ignore[misc]
    """Batches from cached views: each epoch every image shows one random view."""

    def __init__(self, feats: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                 batch_size: int, shuffle: bool, seed: int) -> None:
        super().__init__()
        self.feats = feats
        self.y = y
        self.w = weights
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._order = np.arange(len(y))
        self._views = np.zeros(len(y), dtype=np.int64)
        self._reshuffle()

    def _reshuffle(self) -> None:
        rng = np.random.default_rng(self.seed + self.epoch)
        n, num_views = len(self.y), self.feats.shape[0]
        self._order = rng.permutation(n) if self.shuffle else np.arange(n)
        self._views = rng.integers(0, num_views, size=n) if self.shuffle else np.zeros(n, int)

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        x = self.feats[self._views[idx], idx].astype(np.float32)
        if self.w is None:
            return x, self.y[idx]
        return x, self.y[idx], self.w[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._reshuffle()


def head_trainer(cm: ClassifierModel) -> Any:
    """pooled features -> the classifier's own Dropout and Dense layers."""
    return make_inference_backbone_trainer(
        [], None, [cm.model.get_layer("dropout"), cm.head], "head_trainer")


def top_trainer(cm: ClassifierModel, cut: int) -> Any:
    """cut tensor -> the backbone's top (inference mode) -> pool -> dropout -> Dense."""
    return make_inference_backbone_trainer(
        [], top_part(cm.backbone, cut),
        [cm.model.get_layer("pool"), cm.model.get_layer("dropout"), cm.head], "top_trainer")
