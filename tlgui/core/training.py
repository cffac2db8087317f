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
from tlgui.core.device_memory import plan_batches
from tlgui.core.devices import DeviceInfo, select_device
from tlgui.core.errors import Cancelled, ConfigError, TlguiError
from tlgui.core.events import (
    Notice,
    PhaseEnded,
    PhaseStarted,
    Report,
    RunStarted,
    ignore,
)
from tlgui.core.memory import release_memory
from tlgui.core.model import ClassifierModel, make_optimizer
from tlgui.core.model_file import save_keras
from tlgui.core.oom import with_oom_retry
from tlgui.core.phase_monitor import PhaseMonitor
from tlgui.core.pixel_cache import PixelCache, fill_cache, load_pixels
from tlgui.core.precision import dtype_policy, model_precision, resolve_precision
from tlgui.core.runs import RunFolder

log = logging.getLogger(__name__)
IMBALANCE_FOR_WEIGHTS = 1.5
# A full garbage collection takes 0.2-0.5 s with TensorFlow loaded; a run on less image data
# than this leaves too little behind between its stages to be worth one.
RELEASE_ABOVE_BYTES = 64 * 2**20


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
    """Holds one run's data, features and trainers.

    With cached views it holds the training and validation images as ``Images`` streamed
    from the pixel cache, and the features computed from them; with per-epoch
    augmentation it holds the pixels themselves.
    """

    def __init__(self, cm: ClassifierModel, config: TrainConfig, y_train: np.ndarray,
                 y_val: np.ndarray, report: Report, cancel: threading.Event) -> None:
        self.cm, self.config, self.report, self.cancel = cm, config, report, cancel
        self.n_classes = cm.model.outputs[0].shape[-1]
        self.labels_train = y_train
        self.y_train = _one_hot(y_train, self.n_classes)
        self.y_val = _one_hot(y_val, self.n_classes)
        self.w_train = _sample_weights(y_train, self.n_classes, config.class_weights)
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
                 label: str, pooled: bool = True, cut_slots: int = 0) -> ff.FeatureSet:
        bs = self.feature_batch
        if self.net is None:
            self.net = ff.feature_model(self.cm.backbone, cut)
        return with_oom_retry(
            lambda b: ff.extract(self.cm, images, views, cut, b, self.report, self.cancel,
                                 self.config.seed, label, pooled=pooled,
                                 cut_slots=cut_slots, net=self.net),
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
        self.y_train = self.y_train[keep]
        self.labels_train = self.labels_train[keep]
        self.w_train = _sample_weights(self.labels_train, self.n_classes,
                                       self.config.class_weights)
        self.train_images = self.train_images.select(keep)
        problems = list(train.problems)
        if self.val_images.n:
            val = self._extract(self.val_images, [0], cut, "validation images")
            keep_v = np.flatnonzero(val.kept)
            self.val_feats = val.select(keep_v)
            self.y_val = self.y_val[keep_v]
            problems += val.problems
        self.problems += problems
        self.release_memory()  # the pass's garbage, before the phase-1 trainer is built
        return problems

    def release_memory(self) -> None:
        size = self.cm.image_size
        if len(self.y_train) * size * size * 3 >= RELEASE_ABOVE_BYTES:
            release_memory()

    def prepare_views(self) -> None:
        """Adds the further training views (mirror, random augmentations) at the cut."""
        feats = self.train_feats
        if self.views_done or self.views <= 1 or feats is None or feats.cut is None:
            return
        assert self.train_images is not None
        more = self._extract(self.train_images, list(range(1, self.views)), self.cut,
                             "training images, mirrored and augmented views", pooled=False)
        assert more.cut is not None
        # The slots were reserved in phase 1; filling them copies one view at a time.
        for v in range(1, self.views):
            feats.cut[v] = more.cut[v - 1]
            # A file that became unreadable since phase 1 shows its first view instead.
            feats.cut[v, ~more.kept] = feats.cut[0, ~more.kept]
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
            train = _PixelBatches(self.x_train, self.y_train, self.w_train, bs, True, seed)
            val: Any = (self.x_val, self.y_val) if len(self.x_val) else None
        else:
            assert self.train_feats is not None
            if phase == 1:
                assert self.train_feats.pooled is not None
                feats = self.train_feats.pooled
                trainer = ff.head_trainer(cm)
                val_x = self.val_feats.pooled[0] if self.val_feats and \
                    self.val_feats.pooled is not None else None
            else:
                assert self.cut is not None
                assert self.train_feats.cut is not None
                feats = self.train_feats.cut
                self.train_feats.pooled = None  # phase 1's inputs, not needed any more
                if self.val_feats:
                    self.val_feats.pooled = None
                trainer = ff.top_trainer(cm, self.cut)
                val_x = self.val_feats.cut[0] if self.val_feats and \
                    self.val_feats.cut is not None else None
            later = phase == 2 and not self.views_done and self.views > 1
            train = ff.ViewBatches(feats, self.y_train, self.w_train, bs, True, seed,
                                   available=1 if later else None)
            if later:
                callbacks.append(_AddViewsAfterFirstEpoch(self, train, pc.epochs))
            # In batches, as training: a float32 copy of all cut tensors would be a peak.
            val = ff.ViewBatches(val_x[None], self.y_val, None, bs, False, seed) \
                if val_x is not None else None
            trainer.compile(optimizer=make_optimizer(pc), loss=loss, metrics=["accuracy"])
        monitor = PhaseMonitor(trainer, phase, first_epoch, pc.epochs,
                                pc.early_stopping_patience, self.report, self.cancel,
                                history, on_best, pc.learning_rate)
        if baseline is not None and baseline.best is not None:
            monitor.start_from(baseline.best, baseline.best_epoch)
        monitor.batches = len(train)
        try:
            trainer.fit(train, validation_data=val, epochs=pc.epochs, verbose=0,
                        callbacks=[monitor, *callbacks], batch_size=None)
        finally:
            monitor.restore_best()
        return monitor


class _AddViewsAfterFirstEpoch(keras.callbacks.Callback):  # type: ignore[misc]
    """Computes the further training views once the first phase-2 epoch has ended.

    That epoch trains on the images as they are, which are ready; the pass for the other
    views costs about one epoch, so running it first would only delay the first
    fine-tuned model. Epochs from the second on draw from every view.
    """

    def __init__(self, engine: _Engine, batches: ff.ViewBatches, epochs: int) -> None:
        super().__init__()
        self.engine, self.batches, self.epochs = engine, batches, epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == 0 and self.epochs > 1 and not self.model.stop_training:
            self.engine.release_memory()  # the epoch's garbage, before the pass adds its own
            self.engine.prepare_views()
            self.batches.available = self.engine.views


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

    The run uses the device ``config.device`` picks (``devices.select_device``) and
    the precision ``config.precision`` resolves to there (a model passed in keeps
    the precision it was built with); ``status.json`` records device, backend and
    precision.

    Returns:
        The result; ``cancelled`` tells whether the user stopped it.

    Raises:
        RecompileRequired: ``model`` has trainable edits it was not compiled with.
        WeightsNotFound, ConfigError, DatasetError: settings or files at fault (a
            device that is not available is a ``ConfigError``).
    """
    device = select_device(config.device)
    policy = model_precision(model.model) if model is not None \
        else resolve_precision(config.precision, device)
    report(Notice("info", f"Training on {device.label()} with the {device.backend} "
                          f"backend, {policy.replace('_', ' ')} precision."))
    with keras.device(device.keras_name), dtype_policy(policy):
        return _run_training(dataset, config, report, cancel, model=model,
                             use_model_trainable=use_model_trainable, cache=cache,
                             run_root=run_root, write_run=write_run, device=device,
                             compute={"device": device.to_dict(), "backend": device.backend,
                                      "precision": policy})


def _run_training(
    dataset: Dataset,
    config: TrainConfig,
    report: Report,
    cancel: threading.Event | None,
    *,
    model: ClassifierModel | None,
    use_model_trainable: bool,
    cache: PixelCache | None,
    run_root: Path | None,
    write_run: bool,
    device: DeviceInfo,
    compute: dict[str, Any],
) -> TrainResult:
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
        run.write_status("running", **compute)
        report(RunStarted(str(run.path)))
    history: list[dict[str, Any]] = []
    result = TrainResult(cm, history, run, dataset)
    try:
        t0 = time.monotonic()
        engine = _load(dataset, cm, config, cache, report, cancel)
        _plan_batches(engine, device, report)
        _notice_bad(report, engine.problems)
        result.dataset = dataset.without(engine.problems)
        result.decode_seconds = time.monotonic() - t0

        def on_best(epoch: int) -> None:
            if not run:
                return
            try:
                save_keras(cm.model, run.model_path, cm.class_names,
                           {"image_size": cm.image_size, "backbone": cm.backbone_name,
                            "epoch": epoch}, overwrite=True)
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
        if run:
            run.write_layers(cm.trainable_flags())
        epoch = 1
        phase1: PhaseMonitor | None = None
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
                bad = engine.prepare_features(cut)
                _notice_bad(report, bad)
                result.dataset = result.dataset.without(bad)
            trainable, _ = cm.param_counts()
            report(PhaseStarted(phase, pc.epochs, epoch, pc.learning_rate, trainable))
            # Phase 2 must beat phase 1's best epoch, or phase 1's weights are kept.
            mon = engine.fit_phase(phase, pc, epoch, history, on_best, baseline=phase1)
            if phase == 1:
                phase1 = mon
            elif phase1 is not None and mon.best_epoch == phase1.best_epoch:
                report(Notice("info", "Fine-tuning did not beat the head trained in phase 1; "
                                      "the model keeps the weights of phase 1."))
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
    except KeyboardInterrupt:
        # Ctrl-C where no cancel event could be checked: the user stopped it; nothing failed.
        if run:
            run.write_history(history)
            run.write_status("cancelled", reason="interrupted (Ctrl-C)")
        raise
    except BaseException as exc:
        if run:
            run.write_status("failed", error=str(exc))
        raise
    return result


def _plan_batches(engine: _Engine, device: DeviceInfo, report: Report) -> None:
    """On a GPU: a larger feature batch, and a training batch that fits its free memory."""
    dtype_bytes = 2 if model_precision(engine.cm.model) != "float32" else 4
    engine.feature_batch, engine.train_batch = plan_batches(
        device, engine.cm.backbone, dtype_bytes, ff.FEATURE_BATCH, engine.config.batch_size)
    if engine.train_batch < engine.config.batch_size:
        report(Notice("warning", f"Batches of {engine.config.batch_size} images would not fit "
                                 f"in the GPU's free memory; training with {engine.train_batch}."))


def _load(dataset: Dataset, cm: ClassifierModel, config: TrainConfig, cache: PixelCache,
          report: Report, cancel: threading.Event) -> _Engine:
    """The engine with the run's images: streamed from the cache, or in memory."""
    size = cm.image_size
    if config.augment.mode == "per_epoch":
        x_train, kept_t, bad_t = load_pixels(dataset.train, size, cache, report, cancel)
        x_val, kept_v, bad_v = load_pixels(dataset.validation, size, cache, report, cancel)
        train, val = [dataset.train[i] for i in kept_t], [dataset.validation[i] for i in kept_v]
    else:
        # Decoded into the cache only; the features stream them back a chunk at a time.
        bad = fill_cache(dataset.train + dataset.validation, size, cache, report, cancel) \
            if cache.enabled else []
        dropped = {p.path for p in bad}
        train = [s for s in dataset.train if s.path not in dropped]
        val = [s for s in dataset.validation if s.path not in dropped]
        bad_t, bad_v = bad, []
    engine = _Engine(cm, config, np.array([s.label for s in train], dtype=np.int64),
                     np.array([s.label for s in val], dtype=np.int64), report, cancel)
    engine.problems = bad_t + bad_v
    if config.augment.mode == "per_epoch":
        engine.x_train, engine.x_val = x_train, x_val
    else:
        engine.train_images = ff.Images.of_samples(train, size, cache, cancel)
        engine.val_images = ff.Images.of_samples(val, size, cache, cancel)
    return engine


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
