"""Fitting one phase: the run's data and features, the trainers, the batch streams.

``training.run_training`` drives the run; a ``PhaseFitter`` holds what its phases share
(labels, class weights, the cached images, the frozen features and the cut tensors) and
fits one phase at a time on them, halving the batch on an out-of-memory error.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import keras
import numpy as np

from tlgui.core import frozen_features as ff
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.dataset import Problem
from tlgui.core.distribution import accuracy_metrics, for_devices
from tlgui.core.events import Notice, Report
from tlgui.core.memory import release_memory
from tlgui.core.model import ClassifierModel, make_optimizer
from tlgui.core.oom import with_oom_retry
from tlgui.core.phase_monitor import PhaseMonitor
from tlgui.core.spill import FeatureArray, FeatureStore, gather, put

IMBALANCE_FOR_WEIGHTS = 1.5
# A full garbage collection takes 0.2-0.5 s with TensorFlow loaded; a run on less image data
# than this leaves too little behind between its stages to be worth one.
RELEASE_ABOVE_BYTES = 64 * 2**20


# With 10 photos per class an epoch would be two optimizer steps, and ten epochs leave the
# head far from fitted (issue 15's table: 63.7% on test after phase 1 at 10 photos per
# class, 74.0% with this floor), and fine-tuning stopped before it had moved. An epoch of
# either phase is therefore at least this many steps, going over the photos several times;
# from 640 photos on (at batch 32) nothing changes.
MIN_HEAD_STEPS = 20


def head_passes(images: int, batch_size: int) -> int:
    """How many times one epoch goes over ``images`` photos."""
    batches = max(1, math.ceil(images / max(1, batch_size)))
    return max(1, math.ceil(MIN_HEAD_STEPS / batches))


def sample_weights(labels: np.ndarray, n: int, enabled: bool) -> np.ndarray | None:
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    present = counts[counts > 0]
    if not enabled or present.max() / present.min() <= IMBALANCE_FOR_WEIGHTS:
        return None
    per_class = np.where(counts > 0, len(labels) / (n * np.maximum(counts, 1)), 0.0)
    weights: np.ndarray = per_class[labels].astype(np.float32)
    return weights


class PixelBatches(ff.PyDataset):  # type: ignore[misc]
    """uint8 image batches for the whole-model (per-epoch augmentation) path."""

    def __init__(self, x: np.ndarray, labels: np.ndarray, classes: int, w: np.ndarray | None,
                 batch: int, shuffle: bool, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.w, self.batch, self.shuffle, self.seed = \
            x, labels, w, batch, shuffle, seed
        self.classes = classes
        self.epoch = 0
        self.order = np.arange(len(labels))
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        idx = np.sort(self.order[i * self.batch:(i + 1) * self.batch])
        y = ff.one_hot(self.y[idx], self.classes)
        if self.w is None:
            return self.x[idx], y
        return self.x[idx], y, self.w[idx]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = np.random.default_rng(self.seed + self.epoch).permutation(len(self.y))
        self.epoch += 1


class PhaseFitter:
    """Holds one run's data, features and trainers.

    With cached views it holds the training and validation images as ``Images`` streamed
    from the pixel cache, and the features computed from them; with per-epoch
    augmentation it holds the pixels themselves. Labels are integers (one-hot a batch at a
    time); feature arrays above the memory budget live on disk until ``close``.
    """

    def __init__(self, cm: ClassifierModel, config: TrainConfig, y_train: np.ndarray,
                 y_val: np.ndarray, report: Report, cancel: threading.Event) -> None:
        self.cm, self.config, self.report, self.cancel = cm, config, report, cancel
        self.n_classes = cm.model.outputs[0].shape[-1]
        self.labels_train = y_train
        self.labels_val = y_val
        self.store = FeatureStore()
        self.w_train = sample_weights(y_train, self.n_classes, config.class_weights)
        self.x_train = np.empty((0,), np.uint8)
        self.x_val = np.empty((0,), np.uint8)
        self.train_images: ff.Images | None = None
        self.val_images: ff.Images | None = None
        self.train_feats: ff.FeatureSet | None = None
        self.val_feats: ff.FeatureSet | None = None
        self.views_done = False
        self.net: Any = None  # the frozen feature network, built once for the run
        self.cut: int | None = None
        self.problems: list[Problem] = []
        self.feature_batch = ff.FEATURE_BATCH
        self.train_batch = config.batch_size

    @property
    def cached(self) -> bool:
        return self.config.augment.mode != "per_epoch"

    @property
    def views(self) -> int:
        return 1 if self.config.augment.mode == "off" else max(1, self.config.augment.views)

    def _extract(self, images: ff.Images, views: list[int], cut: int | None,
                 label: str, pooled: bool = True, cut_slots: int = 0,
                 cut_into: FeatureArray | None = None,
                 first_slot: int = 0) -> ff.FeatureSet:
        bs = self.feature_batch
        if self.net is None:
            self.net = ff.feature_model(self.cm.backbone, cut)
        return with_oom_retry(
            lambda b: ff.extract(self.cm, images, views, cut, b, self.report, self.cancel,
                                 self.config.seed, label, pooled=pooled,
                                 cut_slots=cut_slots, net=self.net, store=self.store,
                                 cut_into=cut_into, first_slot=first_slot),
            bs, self.report, "computing features")

    def prepare_features(self, cut: int | None) -> list[Problem]:
        """One backbone pass over the images as they are: pooled features and the cut.

        Returns the files that could not be read (they are dropped from the run).
        """
        assert self.train_images is not None and self.val_images is not None
        self.cut = cut
        train = self._extract(self.train_images, [0], cut, "training images",
                              cut_slots=self.views)
        keep = np.flatnonzero(train.kept)
        self.train_feats = train.select(keep)
        self.labels_train = self.labels_train[keep]
        self.w_train = sample_weights(self.labels_train, self.n_classes,
                                       self.config.class_weights)
        self.train_images = self.train_images.select(keep)
        problems = list(train.problems)
        if self.val_images.n:
            val = self._extract(self.val_images, [0], cut, "validation images")
            keep_v = np.flatnonzero(val.kept)
            self.val_feats = val.select(keep_v)
            self.labels_val = self.labels_val[keep_v]
            problems += val.problems
        self.problems += problems
        if self.store.on_disk:
            self.report(Notice(
                "info", f"{self.store.on_disk / 2**30:.1f} GB of frozen features are kept on "
                        f"disk in {self.store.parent} until training ends (beyond the "
                        f"{self.store.budget / 2**20:.0f} MB kept in memory)."))
        self.release_memory()  # the pass's garbage, before the phase-1 trainer is built
        return problems

    def release_memory(self) -> None:
        size = self.cm.image_size
        if len(self.labels_train) * size * size * 3 >= RELEASE_ABOVE_BYTES:
            release_memory()

    def prepare_views(self) -> None:
        """Adds the further training views (mirror, random augmentations) at the cut."""
        feats = self.train_feats
        if self.views_done or self.views <= 1 or feats is None or feats.cut is None:
            return
        assert self.train_images is not None
        # The slots were reserved in phase 1: the pass writes into them.
        more = self._extract(self.train_images, list(range(1, self.views)), self.cut,
                             "training images, mirrored and augmented views", pooled=False,
                             cut_into=feats.cut, first_slot=1)
        lost = np.flatnonzero(~more.kept)
        if len(lost):  # files unreadable since phase 1 show their first view instead
            first = gather(feats.cut, 0, lost)
            for v in range(1, self.views):
                put(feats.cut, v, lost, first)
        self.views_done = True
        self.net = None

    def fit_phase(self, phase: int, pc: PhaseConfig, first_epoch: int,
                  history: list[dict[str, Any]], on_best: Any,
                  baseline: PhaseMonitor | None = None) -> PhaseMonitor:
        start = len(history)

        def attempt(bs: int) -> PhaseMonitor:
            del history[start:]  # an attempt that ran out of memory is run again whole
            return self._fit_phase(phase, pc, first_epoch, history, on_best, bs, baseline)

        return with_oom_retry(attempt, self.train_batch, self.report, "training")

    def _fit_phase(self, phase: int, pc: PhaseConfig, first_epoch: int,
                   history: list[dict[str, Any]], on_best: Any, bs: int,
                   baseline: PhaseMonitor | None) -> PhaseMonitor:
        cm, cfg = self.cm, self.config
        callbacks: list[Any] = []
        cm.check_compiled()
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        seed = cfg.seed + phase
        if not self.cached:
            trainer = cm.trainer
            train = PixelBatches(self.x_train, self.labels_train, self.n_classes, self.w_train,
                                 bs, True, seed)
            val: Any = PixelBatches(self.x_val, self.labels_val, self.n_classes, None, bs,
                                    False, seed) if len(self.x_val) else None
        else:
            assert self.train_feats is not None
            if phase == 1:
                assert self.train_feats.pooled is not None
                feats = self.train_feats.pooled
                trainer = ff.head_trainer(cm)
                val_x = ff.single_view(self.val_feats.pooled) if self.val_feats and \
                    self.val_feats.pooled is not None else None
            else:
                assert self.cut is not None
                assert self.train_feats.cut is not None
                feats = self.train_feats.cut
                self.train_feats.pooled = None  # phase 1's inputs, not needed any more
                if self.val_feats:
                    self.val_feats.pooled = None
                trainer = ff.top_trainer(cm, self.cut)
                val_x = ff.single_view(self.val_feats.cut) if self.val_feats and \
                    self.val_feats.cut is not None else None
            later = phase == 2 and not self.views_done and self.views > 1
            train = ff.ViewBatches(feats, self.labels_train, self.n_classes, self.w_train, bs,
                                   True, seed, available=1 if later else None,
                                   passes=head_passes(len(self.labels_train), bs))
            if later:
                callbacks.append(AddViewsAfterFirstEpoch(self, train, pc.epochs))
            # In batches, as training: a float32 copy of all cut tensors would be a peak.
            val = ff.ViewBatches(val_x, self.labels_val, self.n_classes, None, bs, False,
                                 seed) if val_x is not None else None
            trainer.compile(optimizer=make_optimizer(pc), loss=loss, **accuracy_metrics())
        monitor = PhaseMonitor(trainer, phase, first_epoch, pc.epochs,
                                pc.early_stopping_patience, self.report, self.cancel,
                                history, on_best, pc.rate)
        if baseline is not None and baseline.best is not None:
            monitor.start_from(baseline.best, baseline.best_epoch)
        monitor.batches = len(train)
        train, val = for_devices(train, val, bs)  # unchanged on one device (ADR 010)
        try:
            trainer.fit(train, validation_data=val, epochs=pc.epochs, verbose=0,
                        callbacks=[monitor, *callbacks], batch_size=None)
        finally:
            monitor.restore_best()
        return monitor


class AddViewsAfterFirstEpoch(keras.callbacks.Callback):  # type: ignore[misc]
    """Computes the further training views once the first phase-2 epoch has ended.

    That epoch trains on the images as they are, which are ready; the pass for the other
    views costs about one epoch, so running it first would only delay the first
    fine-tuned model. Epochs from the second on draw from every view.
    """

    def __init__(self, engine: PhaseFitter, batches: ff.ViewBatches, epochs: int) -> None:
        super().__init__()
        self.engine, self.batches, self.epochs = engine, batches, epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == 0 and self.epochs > 1 and not self.model.stop_training:
            self.engine.release_memory()  # the epoch's garbage, before the pass adds its own
            self.engine.prepare_views()
            self.batches.available = self.engine.views
