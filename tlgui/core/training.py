"""Two-phase training: the head on a frozen backbone, then fine-tuning of its top.

``run_training`` is the one entry point; it reports events, stops within one batch when
``cancel`` is set, keeps the best weights of each phase, and writes a run folder.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tlgui.core import frozen_features as ff
from tlgui.core.config import TrainConfig, check_train_config
from tlgui.core.cross_validation import CrossValidation, cross_validate
from tlgui.core.dataset import Dataset, Problem
from tlgui.core.device_memory import plan_batches
from tlgui.core.devices import DeviceInfo, select_device
from tlgui.core.distribution import is_main_process, parallel_scope, plan_devices
from tlgui.core.errors import Cancelled, ConfigError, TlguiError
from tlgui.core.events import (
    Notice,
    PhaseEnded,
    PhaseStarted,
    Report,
    RunStarted,
    ignore,
)
from tlgui.core.intervals import summarize_validation
from tlgui.core.linear_head import HeadSettings
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import DATASET_KEY, save_keras
from tlgui.core.phase_fit import PhaseFitter
from tlgui.core.phase_monitor import PhaseMonitor
from tlgui.core.pixel_cache import PixelCache, fill_cache, load_pixels
from tlgui.core.precision import dtype_policy, model_precision, resolve_precision
from tlgui.core.runs import RunFolder
from tlgui.core.spill import FeatureStore

log = logging.getLogger(__name__)


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
        cross_validation: the head cross-validated over every photo after phase 1
            (``cross_validation``), or None when not measured.
    """

    model: ClassifierModel
    history: list[dict[str, Any]]
    run: RunFolder | None
    dataset: Dataset
    phase_seconds: dict[int, float] = field(default_factory=dict)
    phase_accuracy: dict[int, float] = field(default_factory=dict)
    decode_seconds: float = 0.0
    cancelled: bool = False
    cross_validation: CrossValidation | None = None


def _phase2_cut(cm: ClassifierModel) -> int:
    first = cm.first_trainable_backbone_index()
    if first is None:
        raise ConfigError("Phase 2 has no trainable backbone layer: set fine_tune_at lower.")
    return ff.find_cut(cm.backbone, first)


def _cross_validate(engine: PhaseFitter, config: TrainConfig, report: Report,
                    cancel: threading.Event) -> CrossValidation | None:
    """The head cross-validated over every photo, from phase 1's features (about a second)."""
    feats = engine.train_feats
    if not engine.cached or feats is None or feats.pooled is None:
        return None
    val = engine.val_feats.pooled if engine.val_feats is not None else None
    p1 = config.phase1
    # The numpy head steps with Adam: phase 1's rate where phase 1 does too; its epochs,
    # up to 30 (the folds multiply them).
    rate = p1.learning_rate if p1.optimizer in ("adam", "adamw") else 1e-3
    recipe = HeadSettings(epochs=min(30, max(1, p1.epochs)), learning_rate=rate,
                          batch_size=config.batch_size, seed=config.seed)
    cv = cross_validate(feats.pooled, engine.labels_train, val, engine.labels_val,
                        int(engine.n_classes), seed=config.seed, cancel=cancel,
                        settings=recipe)
    if cv is not None:
        report(Notice("info", cv.sentence()))
    return cv


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
    check_train_config(config)  # a batch size of 0 would fail only after the features
    device = select_device(config.device)
    # Several devices (ADR 010): refused here, before any work, when they cannot be used.
    plan = plan_devices(config.devices, config.device, device, config.batch_size)
    policy = model_precision(model.model) if model is not None \
        else resolve_precision(config.precision, device)
    where = device.label() if plan.count == 1 else \
        f"{plan.count} devices ({', '.join(plan.devices)}), data parallel,"
    report(Notice("info", f"Training on {where} with the {device.backend} "
                          f"backend, {policy.replace('_', ' ')} precision."))
    models = [model.model] if model is not None else []
    with parallel_scope(plan, models), dtype_policy(policy):
        result = _run_training(dataset, config, report, cancel, model=model,
                               use_model_trainable=use_model_trainable, cache=cache,
                               run_root=run_root, device=device,
                               write_run=write_run and is_main_process(),  # one writer
                               compute={"device": device.to_dict(), "backend": device.backend,
                                        "precision": policy, "devices": plan.to_dict()})
        models.append(result.model.model)  # back on one device when the scope ends
        return result


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
        # The size resolved, so the run keeps it when a backbone's default changes.
        run.write_start(config.replace(image_size=cm.image_size), dataset.class_names,
                        dataset.root)
        run.write_status("running", **compute)
        report(RunStarted(str(run.path)))
    history: list[dict[str, Any]] = []
    result = TrainResult(cm, history, run, dataset)
    engine: PhaseFitter | None = None
    try:
        t0 = time.monotonic()
        # The features' smallest likely size (MobileNetV2's cut at 160 px is a quarter of
        # the pixels per view): checked for room before the decoding, not after it.
        size = cm.image_size
        FeatureStore().check_room(len(dataset.train) * size * size * 3 // 4)
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
                            "epoch": epoch, DATASET_KEY: os.path.abspath(dataset.root)},
                           overwrite=True)
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
                result.cross_validation = _cross_validate(engine, config, report, cancel)
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
            summary = summarize_validation(history, len(result.dataset.validation))
            run.write_status("complete", phase_seconds=result.phase_seconds,
                             phase_accuracy=result.phase_accuracy,
                             validation_interval=summary.to_dict() if summary else None,
                             cross_validation=result.cross_validation.to_dict()
                             if result.cross_validation else None)
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
    finally:
        if engine is not None:
            engine.store.close()  # spilled features: a run's, removed with it
    return result


def _plan_batches(engine: PhaseFitter, device: DeviceInfo, report: Report) -> None:
    """On a GPU: a larger feature batch, and a training batch that fits its free memory."""
    dtype_bytes = 2 if model_precision(engine.cm.model) != "float32" else 4
    engine.feature_batch, engine.train_batch = plan_batches(
        device, engine.cm.backbone, dtype_bytes, ff.FEATURE_BATCH, engine.config.batch_size)
    if engine.train_batch < engine.config.batch_size:
        report(Notice("warning", f"Batches of {engine.config.batch_size} images would not fit "
                                 f"in the GPU's free memory; training with {engine.train_batch}."))


def _load(dataset: Dataset, cm: ClassifierModel, config: TrainConfig, cache: PixelCache,
          report: Report, cancel: threading.Event) -> PhaseFitter:
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
    engine = PhaseFitter(cm, config, np.array([s.label for s in train], dtype=np.int64),
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
