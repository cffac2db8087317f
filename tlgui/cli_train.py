"""``tlgui train``: every destination checked before the scan, Ctrl-C keeps the best epoch."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from tlgui.cli_interrupt import ctrl_c_cancels
from tlgui.core.config import TrainConfig
from tlgui.core.entries import printable
from tlgui.core.errors import Cancelled, ConfigError, TlguiError
from tlgui.core.intervals import summarize_validation
from tlgui.core.model_meta import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE


def _say(line: str = "", err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout)


# The option that sets each checked setting, so that a range message names it.
OPTION_NAMES = {
    "batch_size": "--batch-size", "seed": "--seed",
    "split.validation_fraction": "--validation-split",
    "phase1.epochs": "--epochs", "phase1.learning_rate": "--lr",
    "phase1.early_stopping_patience": "--patience",
    "phase2.epochs": "--fine-tune-epochs", "phase2.learning_rate": "--fine-tune-lr",
    "phase2.early_stopping_patience": "--patience", "phase2.schedule": "--fine-tune-schedule",
}


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The training settings the command-line options give, range-checked.

    Raises:
        ConfigError: an option is out of range (the message names it), or ``--weights``
            names something that is not a regular file.
    """
    from tlgui.core.config import AugmentConfig, PhaseConfig, SplitConfig, check_train_config

    if args.image_size is not None and not MIN_IMAGE_SIZE <= args.image_size <= MAX_IMAGE_SIZE:
        # A model file larger than this is refused on loading; and a size of 5,000 would
        # fill gigabytes of pixel cache before the first epoch.
        raise ConfigError(f"--image-size must be between {MIN_IMAGE_SIZE} and "
                          f"{MAX_IMAGE_SIZE} pixels (got {args.image_size}).")
    base = TrainConfig()
    fine_tune_at: int | str | None = args.fine_tune_at
    if isinstance(fine_tune_at, str) and fine_tune_at.lstrip("-").isdigit():
        fine_tune_at = int(fine_tune_at)
    config = TrainConfig(
        backbone=args.backbone,
        image_size=args.image_size,
        weights=args.weights,
        weights_dir=args.weights_dir,
        phase1=PhaseConfig(args.epochs, args.lr, args.optimizer, args.patience),
        phase2=PhaseConfig(args.fine_tune_epochs, args.fine_tune_lr, args.fine_tune_optimizer,
                           args.patience, args.fine_tune_schedule),
        fine_tune_at=fine_tune_at,
        batch_size=args.batch_size,
        augment=AugmentConfig(mode=args.augment),
        split=SplitConfig(validation_fraction=args.validation_split),
        seed=args.seed,
        dropout=base.dropout,
        device=device_setting(args),
        precision=args.precision,
        devices=args.devices,
    )
    check_train_config(config, OPTION_NAMES)
    if config.weights not in ("imagenet", "none"):
        from tlgui.core.weights import check_weights_file

        check_weights_file(config.weights)  # a pipe or a device, said before the scan
    return config


def device_setting(args: argparse.Namespace) -> str:
    """``train --device`` when given, else the global ``--device``."""
    return str(getattr(args, "train_device", None) or getattr(args, "device", "auto"))


def check_destinations(args: argparse.Namespace) -> Path | None:
    """Checks ``--out``, the run folder and the pixel cache before any long work.

    Returns:
        The ``--out`` path, if given.

    Raises:
        ConfigError: ``--out`` does not end in ``.keras``.
        UnsafeDestination: a destination lies inside the dataset or is the weights file.
        DestinationExists: ``--out`` exists and ``--overwrite`` was not given.
        WriteError: a destination cannot be written.
    """
    from tlgui.core.destinations import check_cache_outside, check_folder_output, check_output
    from tlgui.core.paths import runs_dir

    data = Path(args.data).expanduser()
    check_folder_output(runs_dir(), inputs=[data], may_hold_inputs=True)
    check_cache_outside(data)
    if not args.out:
        return None
    out = Path(args.out).expanduser()
    if out.suffix != ".keras":
        raise ConfigError(f"--out {printable(out)}: a model file must end in .keras.")
    weights = Path(args.weights).expanduser() if args.weights not in ("imagenet", "none") \
        else None
    return check_output(out, inputs=[data], model=weights, overwrite=args.overwrite)


def cmd_train(args: argparse.Namespace, reporter: Any) -> int:
    """Runs ``tlgui train``; returns the exit code (1 when cancelled)."""
    from tlgui.core.dataset import scan
    from tlgui.core.training import run_training

    config = train_config(args)
    out = check_destinations(args)
    writer = True
    if getattr(args, "multi_host", False):
        from tlgui.core.distribution import is_main_process, join_hosts

        # JAX waits for the others in native code, up to its 300 s timeout, deaf to
        # Ctrl-C: without this line a wrong address looked like a hang.
        _say("waiting for the other processes to join (up to 5 minutes; Ctrl-C is only "
             "heard once they have joined or the wait has ended)")
        _say(f"joined {join_hosts()} processes")  # before any computation (ADR 010)
        writer = is_main_process()  # the first process writes --out, as the run folder
    cancel = threading.Event()
    try:
        with ctrl_c_cancels(cancel, "training"):
            ds = scan(args.data, config.split, report=reporter, cancel=cancel)
            _say(f"{len(ds.train)} training and {len(ds.validation)} validation images, "
                 f"{ds.num_classes} classes: {', '.join(map(printable, ds.class_names))}")
            for w in ds.warnings:
                _say(f"warning: {printable(w)}")
            if ds.problems:
                _say(f"{len(ds.problems)} file(s) skipped (run 'tlgui scan' to list them)")
            result = run_training(ds, config, report=reporter, cancel=cancel)
    except KeyboardInterrupt:
        _say("Interrupted. The run is marked cancelled; a checkpoint of the best finished "
             "epoch, if any, is in its run folder ('tlgui runs' lists it). --out was not "
             "written.", err=True)
        return 1
    for phase, secs in result.phase_seconds.items():
        _say(f"phase {phase}: {secs:.1f}s, best validation accuracy "
             f"{result.phase_accuracy[phase]:.4f}")
    summary = summarize_validation(result.history, len(result.dataset.validation))
    if summary is not None:
        _say(summary.sentence())
    if result.run:
        _say(f"run folder: {printable(result.run.path)}")
    if result.cancelled and not result.history:
        _say("Cancelled before the first epoch finished: nothing was trained, so no model "
             "was kept" + (f" and {printable(out)} was not written." if out else "."),
             err=True)
        return 1
    if result.cancelled:
        _say(f"Cancelled. {_kept(result)}", err=True)
    if out is not None and writer:
        _write_out(result, out, args.overwrite)
    if result.cancelled:
        return 1
    if result.dataset.test and writer:
        return _say_test(result)
    return 0


def _say_test(result: Any) -> int:
    """Measures the kept model once on the dataset's ``test/`` folder; returns the exit code.

    The test images chose nothing (not the epoch, not the settings), so unlike the
    validation figure this one is not flattered by the choice of the best epoch.
    """
    from tlgui.core.evaluate import evaluate_model
    from tlgui.core.intervals import wilson_interval

    cancel = threading.Event()
    try:
        with ctrl_c_cancels(cancel, "the test evaluation"):
            ev = evaluate_model(result.model.model, result.model.image_size, result.dataset,
                                "test", cancel=cancel)
    except Cancelled:
        _say("Test evaluation cancelled; the training itself is complete.", err=True)
        return 1
    total = int(ev.confusion.sum())
    if total == 0:
        _say("warning: no image of test/ could be read, so there is no test accuracy.")
        return 0
    low, high = wilson_interval(int(ev.confusion.trace()), total)
    _say(f"Test accuracy {100 * ev.accuracy:.1f}% (95% interval {100 * low:.1f}–"
         f"{100 * high:.1f}%, {total} images of test/, measured once on the kept model).")
    return 0


def _kept(result: Any) -> str:
    """Which checkpoint a cancelled run kept, and where."""
    from tlgui.core.model_file import read_metadata

    epochs = len(result.history)
    where = result.run.model_path if result.run else None
    epoch = None
    if where is not None and where.is_file():
        try:
            epoch = read_metadata(where).get("epoch")
        except TlguiError:  # the message must not fail over a detail
            epoch = None
    best = next((h for h in result.history if h.get("epoch") == epoch), None)
    acc = f", validation accuracy {best['val_accuracy']:.4f}" \
        if best and best.get("val_accuracy") is not None else ""
    what = f"the best finished epoch (epoch {epoch}{acc})" if epoch else \
        "the best finished epoch"
    place = f" is kept in {printable(where)}" if where is not None and where.is_file() \
        else " is kept in memory only (no run folder)"
    return f"{epochs} epoch(s) finished; {what}{place}."


def _write_out(result: Any, out: Path, overwrite: bool) -> None:
    from tlgui.core.model_file import DATASET_KEY, save_keras

    # The dataset is recorded so that an export of this file never lands inside it.
    written = save_keras(result.model.model, out, result.model.class_names,
                         {"image_size": result.model.image_size,
                          "backbone": result.model.backbone_name,
                          DATASET_KEY: os.path.abspath(result.dataset.root)},
                         overwrite=overwrite)
    how = "best finished epoch" if result.cancelled else "best epoch"
    _say(f"model ({how}) written to {printable(written)}")
