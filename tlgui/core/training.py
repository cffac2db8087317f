"""Two-phase training: the head on a frozen backbone, then fine-tuning of its top.

``run_training`` is the one entry point; it reports events, stops within one batch when
``cancel`` is set, keeps the best weights of each phase, and writes a run folder.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tlgui.core import frozen_features as ff
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.dataset import Dataset, Problem
from tlgui.core.errors import Cancelled, ConfigError, TlguiError
from tlgui.core.events import (
    Notice,
    PhaseEnded,
    PhaseStarted,
    Report,
    ignore,
)
from tlgui.core.model import ClassifierModel, make_optimizer
from tlgui.core.model_file import save_keras
from tlgui.core.oom import with_oom_retry
from tlgui.core.phase_monitor import PhaseMonitor
from tlgui.core.pixel_cache import PixelCache, load_pixels
from tlgui.core.runs import RunFolder

log = logging.getLogger(__name__)
IMBALANCE_FOR_WEIGHTS = 1.5


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        model: the classifier holding the best weights.
        history: one dict per epoch across both phases (global epoch numbering).
        run: the run folder.
        dataset: the dataset, with files that failed to decode moved to its problems.
        phase_seconds: wall time per phase (phase 1 includes the frozen features).
        phase_accuracy: best validation accuracy per phase.
        decode_seconds: time spent loading pixels through the cache.
        cancelled: True when the user cancelled (weights are the best finished epoch).
    """

    model: ClassifierModel
    history: list[dict[str, Any]]
    run: RunFolder | None
    dataset: Dataset
    phase_seconds: dict[int, float] = field(default_factory=dict)
    phase_accuracy: dict[int, float] = field(default_factory=dict)
    decode_seconds: float = 0.0
    cancelled: bool = False


def _one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    out: np.ndarray = np.eye(n, dtype=np.float32)[labels]
    return out


def _sample_weights(labels: np.ndarray, n: int, enabled: bool) -> np.ndarray | None:
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    present = counts[counts > 0]
    if not enabled or present.max() / present.min() <= IMBALANCE_FOR_WEIGHTS:
        return None
    per_class = np.where(counts > 0, len(labels) / (n * np.maximum(counts, 1)), 0.0)
    weights: np.ndarray = per_class[labels].astype(np.float32)
    return weights


class _PixelBatches(ff.PyDataset):  # type: ignore[misc]
    """uint8 image batches for the whole-model (per-epoch augmentation) path."""

    def __init__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray | None, batch: int,
                 shuffle: bool, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.w, self.batch, self.shuffle, self.seed = x, y, w, batch, shuffle, seed
        self.epoch = 0
        self.order = np.arange(len(y))
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        idx = np.sort(self.order[i * self.batch:(i + 1) * self.batch])
        if self.w is None:
            return self.x[idx], self.y[idx]
        return self.x[idx], self.y[idx], self.w[idx]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = np.random.default_rng(self.seed + self.epoch).permutation(len(self.y))
        self.epoch += 1


class _Engine:
    """Holds one run's data, features and trainers."""

    def __init__(self, cm: ClassifierModel, config: TrainConfig, x_train: np.ndarray,
                 y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 report: Report, cancel: threading.Event) -> None:
        self.cm, self.config, self.report, self.cancel = cm, config, report, cancel
        self.x_train, self.x_val = x_train, x_val
        n = cm.model.outputs[0].shape[-1]
        self.y_train, self.y_val = _one_hot(y_train, n), _one_hot(y_val, n)
        self.w_train = _sample_weights(y_train, n, config.class_weights)
        self.train_feats: ff.FeatureSet | None = None
        self.val_feats: ff.FeatureSet | None = None
        self.cut: int | None = None

    @property
    def cached(self) -> bool:
        return self.config.augment.mode != "per_epoch"

    def prepare_features(self, cut: int | None) -> None:
        """Runs the frozen backbone once per view (and once for validation)."""
        self.cut = cut
        views = 1 if self.config.augment.mode == "off" else max(1, self.config.augment.views)
        bs = max(self.config.batch_size, 32)
        self.train_feats = with_oom_retry(
            lambda b: ff.extract(self.cm, self.x_train, views, cut, b, self.report,
                                 self.cancel, self.config.seed, "training images"),
            bs, self.report, "computing features")
        if len(self.x_val):
            self.val_feats = with_oom_retry(
                lambda b: ff.extract(self.cm, self.x_val, 1, cut, b, self.report,
                                     self.cancel, self.config.seed, "validation images"),
                bs, self.report, "computing features")
        # The trainers only read features from here on; the pixels can go.
        self.x_train = self.x_train[:0]
        self.x_val = self.x_val[:0]

    def fit_phase(self, phase: int, pc: PhaseConfig, first_epoch: int,
                  history: list[dict[str, Any]], on_best: Any) -> PhaseMonitor:
        start = len(history)

        def attempt(bs: int) -> PhaseMonitor:
            del history[start:]  # an attempt that ran out of memory is run again whole
            return self._fit_phase(phase, pc, first_epoch, history, on_best, bs)

        return with_oom_retry(attempt, self.config.batch_size, self.report, "training")

    def _fit_phase(self, phase: int, pc: PhaseConfig, first_epoch: int,
                   history: list[dict[str, Any]], on_best: Any, bs: int) -> PhaseMonitor:
        cm, cfg = self.cm, self.config
        cm.check_compiled()
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        seed = cfg.seed + phase
        if not self.cached:
            trainer = cm.trainer
            train = _PixelBatches(self.x_train, self.y_train, self.w_train, bs, True, seed)
            val: Any = (self.x_val, self.y_val) if len(self.x_val) else None
        else:
            assert self.train_feats is not None
            if phase == 1:
                feats = self.train_feats.pooled
                trainer = ff.head_trainer(cm)
                val_x = self.val_feats.pooled[0] if self.val_feats else None
            else:
                assert self.cut is not None
                assert self.train_feats.cut is not None
                feats = self.train_feats.cut
                trainer = ff.top_trainer(cm, self.cut)
                val_x = self.val_feats.cut[0] if self.val_feats and \
                    self.val_feats.cut is not None else None
            train = ff.ViewBatches(feats, self.y_train, self.w_train, bs, True, seed)
            val = (val_x.astype(np.float32), self.y_val) if val_x is not None else None
            trainer.compile(optimizer=make_optimizer(pc), loss=loss, metrics=["accuracy"])
        monitor = PhaseMonitor(trainer, phase, first_epoch, pc.epochs,
                                pc.early_stopping_patience, self.report, self.cancel,
                                history, on_best, pc.learning_rate)
        monitor.batches = len(train)
        try:
            trainer.fit(train, validation_data=val, epochs=pc.epochs, verbose=0,
                        callbacks=[monitor], batch_size=None)
        finally:
            monitor.restore_best()
        return monitor


def _phase2_cut(cm: ClassifierModel) -> int:
    first = cm.first_trainable_backbone_index()
    if first is None:
        raise ConfigError("Phase 2 has no trainable backbone layer: set fine_tune_at lower.")
    return ff.find_cut(cm.backbone, first)


def run_training(
    dataset: Dataset,
    config: TrainConfig,
    report: Report = ignore,
    cancel: threading.Event | None = None,
    *,
    model: ClassifierModel | None = None,
    use_model_trainable: bool = False,
    cache: PixelCache | None = None,
    run_root: Path | None = None,
    write_run: bool = True,
) -> TrainResult:
    """Trains a classifier in two phases.

    Args:
        dataset: a scanned dataset with training and validation images.
        config: every setting of the run.
        report: receives events (``PhaseStarted``, ``BatchProgress``, ``EpochEnded``...).
        cancel: set it to stop within one batch; the best finished epoch's weights stay.
        model: a model built earlier (the window's, after layer edits); it must be
            compiled since its last trainable change, else ``RecompileRequired``.
        use_model_trainable: phase 2 trains the backbone layers that are trainable in
            ``model`` now, instead of ``config.fine_tune_at``.
        cache: the pixel cache (default: the user cache folder).
        run_root: where run folders go (default: the user data folder).
        write_run: write a run folder at all.

    Returns:
        The result; ``cancelled`` tells whether the user stopped it.

    Raises:
        RecompileRequired: ``model`` has trainable edits it was not compiled with.
        WeightsNotFound, ConfigError, DatasetError: settings or files at fault.
    """
    cancel = cancel or threading.Event()
    if not dataset.train:
        raise ConfigError("The dataset has no training images.")
    if model is not None:
        model.check_compiled()
    cm = model or ClassifierModel.build(config, dataset.class_names)
    phase2_flags = cm.trainable_flags() if use_model_trainable else None
    keras.utils.set_random_seed(config.seed)
    cache = cache or PixelCache()
    run = RunFolder.create(dataset.root, run_root) if write_run else None
    if run:
        run.write_start(config, dataset.class_names, dataset.root)
    history: list[dict[str, Any]] = []
    result = TrainResult(cm, history, run, dataset)
    try:
        t0 = time.monotonic()
        size = cm.image_size
        x_train, kept_t, bad_t = load_pixels(dataset.train, size, cache, report, cancel)
        x_val, kept_v, bad_v = load_pixels(dataset.validation, size, cache, report, cancel)
        _notice_bad(report, bad_t + bad_v)
        result.dataset = dataset.without(bad_t + bad_v)
        y_train = np.array([dataset.train[i].label for i in kept_t], dtype=np.int64)
        y_val = np.array([dataset.validation[i].label for i in kept_v], dtype=np.int64)
        result.decode_seconds = time.monotonic() - t0
        engine = _Engine(cm, config, x_train, y_train, x_val, y_val, report, cancel)
        del x_train, x_val  # the engine owns them and frees them after feature extraction

        def on_best(epoch: int) -> None:
            if not run:
                return
            try:
                save_keras(cm.model, run.model_path, cm.class_names,
                           {"image_size": cm.image_size, "backbone": cm.backbone_name,
                            "epoch": epoch})
                run.write_history(history)
            except OSError as exc:
                raise TlguiError(
                    f"Cannot save the checkpoint in {run.path}: {exc.strerror or exc}. "
                    "Free some disk space and train again; the previous checkpoint is kept."
                ) from exc

        p1, p2 = config.phase1, config.phase2
        cut = None
        if p2.epochs > 0:
            _set_phase2_trainable(cm, config, phase2_flags)
            cut = _phase2_cut(cm) if engine.cached else None
        epoch = 1
        for phase, pc in ((1, p1), (2, p2)):
            if pc.epochs <= 0:
                continue
            t_phase = time.monotonic()
            if phase == 1:
                cm.freeze_backbone()
            else:
                _set_phase2_trainable(cm, config, phase2_flags)
            cm.compile(pc, config.label_smoothing)
            if engine.cached and engine.train_feats is None:
                engine.prepare_features(cut)
            trainable, _ = cm.param_counts()
            report(PhaseStarted(phase, pc.epochs, epoch, pc.learning_rate, trainable))
            mon = engine.fit_phase(phase, pc, epoch, history, on_best)
            result.phase_seconds[phase] = time.monotonic() - t_phase
            result.phase_accuracy[phase] = float(mon.best[0]) if mon.best else float("nan")
            report(PhaseEnded(phase, mon.best_epoch, result.phase_accuracy[phase],
                              result.phase_seconds[phase], mon.stopped_early))
            epoch += len([h for h in history if h["phase"] == phase])
        if run:
            run.write_history(history)
            run.write_status("complete", phase_seconds=result.phase_seconds,
                             phase_accuracy=result.phase_accuracy)
    except Cancelled:
        result.cancelled = True
        if run:
            run.write_history(history)
            run.write_status("cancelled")
        report(Notice("info", "Training cancelled; the best finished epoch is kept."))
    except BaseException as exc:
        if run:
            run.write_status("failed", error=str(exc))
        raise
    return result


def _set_phase2_trainable(cm: ClassifierModel, config: TrainConfig,
                          flags: tuple[tuple[tuple[str, ...], bool], ...] | None) -> None:
    if flags is None:
        cm.set_fine_tune_at(config.fine_tune_at)
        return
    cm.backbone.trainable = True
    for path, flag in flags:
        if path[0] == cm.backbone.name and len(path) == 2:
            cm.layer_at(path).trainable = flag


def _notice_bad(report: Report, bad: list[Problem]) -> None:
    for p in bad[:20]:
        report(Notice("warning", f"Skipped {p.path.name}: {p.reason}"))
    if len(bad) > 20:
        report(Notice("warning", f"... and {len(bad) - 20} more files could not be decoded."))
