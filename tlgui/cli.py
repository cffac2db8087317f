"""Headless commands: scan, train, audit, runs, cache, datasets, export, predict.

Exit codes: 0 success, 1 failure (one line on stderr, the traceback in the log file),
2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, get_args

from tlgui.backend_import import import_keras_quietly, quiet_native_logs
from tlgui.core.config import Schedule, SplitConfig, TrainConfig, check_split
from tlgui.core.entries import printable, printable_lines
from tlgui.core.errors import ConfigError
from tlgui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    Notice,
    PhaseEnded,
    PhaseStarted,
    StageProgress,
)
from tlgui.logs import off_the_console, setup_logging

log = logging.getLogger("tlgui.cli")


class ConsoleReporter:
    """Prints events: a redrawn progress line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_plain = 0.0
        self.open_line = False

    def _line(self, text: str) -> None:
        text = printable_lines(text)  # messages may quote names read from the disk
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def _progress(self, text: str, done: bool = False) -> None:
        text = printable(text)
        if self.tty:
            self.stream.write("\r" + text[:120].ljust(120))
            self.open_line = not done
            if done:
                self.stream.write("\n")
            self.stream.flush()
        elif done or time.monotonic() - self.last_plain > 5:
            self.last_plain = time.monotonic()
            self._line(text)

    def __call__(self, event: Event) -> None:
        if isinstance(event, StageProgress):
            bar = _bar(event.done, event.total)
            total = f"/{event.total}" if event.total else ""
            self._progress(f"{event.message} {bar} {event.done}{total}",
                           done=bool(event.total) and event.done >= event.total)
        elif isinstance(event, PhaseStarted):
            self._line(f"Phase {event.phase}: {event.epochs} epochs from epoch "
                       f"{event.first_epoch}, learning rate {event.learning_rate:g}, "
                       f"{event.trainable_params:,} trainable parameters")
        elif isinstance(event, BatchProgress):
            self._progress(f"  epoch {event.epoch} {_bar(event.batch, event.batches)} "
                           f"{event.batch}/{event.batches} loss {event.loss:.4f} "
                           f"ETA {_fmt_s(event.eta_s)}")
        elif isinstance(event, EpochEnded):
            self._line(f"  epoch {event.epoch} (phase {event.phase}): loss {event.loss:.4f} "
                       f"acc {event.accuracy:.4f}  val_loss {event.val_loss:.4f} "
                       f"val_acc {event.val_accuracy:.4f}  {event.seconds:.1f}s")
        elif isinstance(event, PhaseEnded):
            how = "stopped early" if event.stopped_early else "done"
            self._line(f"Phase {event.phase} {how} in {event.seconds:.1f}s; best epoch "
                       f"{event.best_epoch}, validation accuracy {event.best_val_accuracy:.4f}")
        elif isinstance(event, Notice):
            self._line(f"{event.level}: {event.message}")


def _bar(done: int, total: int, width: int = 24) -> str:
    if not total:
        return ""
    filled = int(width * min(done, total) / total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _split(args: argparse.Namespace) -> SplitConfig:
    """``--validation-split`` as a split, range-checked before any scan."""
    split = SplitConfig(validation_fraction=args.validation_split)
    check_split(split, {"validation_fraction": "--validation-split"})
    return split


def _cmd_scan(args: argparse.Namespace) -> int:
    from tlgui.core.dataset import scan

    ds = scan(args.data, _split(args), report=ConsoleReporter())
    print(f"{printable(ds.root)}  ({ds.layout.replace('_', ' ')}"
          + ("; no validation/ folder: held back from train/" if ds.validation_held_back
             else "") + ")")
    train, val, test = ds.counts("train"), ds.counts("validation"), ds.counts("test")
    # Class names are folder names: shown escaped, like every name read from the disk.
    shown = {c: printable(c) for c in ds.class_names}
    width = max(len(s) for s in shown.values())
    print(f"{'class':<{width}}  train  validation  test")
    for c in ds.class_names:
        print(f"{shown[c]:<{width}}  {train[c]:5d}  {val[c]:10d}  {test[c]:4d}")
    print(f"{'total':<{width}}  {sum(train.values()):5d}  {sum(val.values()):10d}  "
          f"{sum(test.values()):4d}")
    for w in ds.warnings:
        print(f"warning: {printable(w)}")
    if ds.problems:
        print(f"{len(ds.problems)} file(s) skipped:")
        for p in ds.problems:
            print(f"  {printable(p.path)}: {printable(p.reason)}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tlgui.cli_train import cmd_train

    return cmd_train(args, ConsoleReporter())


def _cmd_devices(args: argparse.Namespace) -> int:
    from tlgui.core.devices import describe_compute, list_devices, select_device

    compute = describe_compute(args.device)
    select_device(args.device, [compute.device, *compute.others])  # names a missing one
    for d in list_devices(compute.backend):
        memory = f"{d.memory_bytes / 2**30:.1f} GB" if d.memory_bytes else "memory unknown"
        cc = f", compute capability {d.compute_capability[0]}.{d.compute_capability[1]}" \
            if d.compute_capability else ""
        mark = "*" if d == compute.device else " "
        print(f"{mark} {d.id:<6} {d.kind}  {d.name} ({memory}{cc})")
    print(compute.status_text())
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from tlgui.core.tfds_fetch import fetch_dataset

    dest = fetch_dataset(args.name, Path(args.dest), data_dir=args.data_dir,
                         report=ConsoleReporter(), limit=args.limit)
    print(f"written to {dest}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from tlgui.core.export import export_run

    out = export_run(Path(args.run), args.format, Path(args.out), report=ConsoleReporter(),
                     overwrite=args.overwrite, mirror=args.tta)
    for p in out:
        print(f"written {printable(p)}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    import threading

    from tlgui.cli_interrupt import ctrl_c_cancels
    from tlgui.core.audit import audit_dataset
    from tlgui.core.audit_report import check_csv_destination, summary_lines, write_audit_csv
    from tlgui.core.dataset import scan

    split = _split(args)
    if args.folds < 2:
        raise ConfigError(f"--folds must be at least 2 (got {args.folds}).")
    from tlgui.core.destinations import check_cache_outside
    from tlgui.core.model_meta import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

    if args.image_size is not None and not MIN_IMAGE_SIZE <= args.image_size <= MAX_IMAGE_SIZE:
        raise ConfigError(f"--image-size must be between {MIN_IMAGE_SIZE} and "
                          f"{MAX_IMAGE_SIZE} pixels (got {args.image_size}).")
    if args.top < 0:
        raise ConfigError(f"--top must be 0 or more (got {args.top}).")
    check_cache_outside(args.data)
    if args.csv:
        check_csv_destination(args.csv, args.data, args.overwrite)
    config = TrainConfig(backbone=args.backbone, weights=args.weights,
                         weights_dir=args.weights_dir,
                         split=split)
    reporter = ConsoleReporter()
    ds = scan(args.data, config.split, report=reporter)
    cancel = threading.Event()
    with ctrl_c_cancels(cancel, "the audit"):
        result = audit_dataset(ds, config, reporter, cancel, folds=args.folds,
                               image_size=args.image_size)
    for line in summary_lines(result, args.top):
        print(printable(line))  # paths and class names read from the dataset
    if args.csv:
        written = write_audit_csv(result, args.csv, overwrite=args.overwrite)
        print(f"CSV written to {printable(written)}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from tlgui.cli_predict import predict_cli

    return predict_cli(args, report=ConsoleReporter())


def _path(text: str) -> str:
    """A path option: an empty one is a usage error, not "no file" nor the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a path cannot be empty")
    return text


TTA_HELP = ("test-time augmentation: average each image's answer with its mirror's "
            "(twice the computation per image)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tlgui`` command."""
    from tlgui.core.backbones import DEFAULT_BACKBONE, REGISTRY

    p = argparse.ArgumentParser(prog="tlgui", description=__doc__.splitlines()[0])
    p.add_argument("--verbose", "-v", action="store_true", help="log debug lines too")
    p.add_argument("--self-test", action="store_true",
                   help="train, export and predict on generated images; exit 0 if all works")
    p.add_argument("--device", default="auto",
                   help="auto (the first GPU, else the CPU), cpu, or an id from "
                        "'tlgui devices' (gpu:0, gpu:1, mps)")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("scan", help="count images per class and list unusable files")
    s.add_argument("data", type=_path,
                   help="folder of class folders (or with train/ and validation/ or test/)")
    s.add_argument("--validation-split", type=float, default=0.2)
    s.set_defaults(func=_cmd_scan)

    t = sub.add_parser("train", help="train a classifier in two phases")
    t.add_argument("data", type=_path)
    t.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(REGISTRY))
    t.add_argument("--image-size", type=int, default=None)
    t.add_argument("--weights", default="imagenet",
                   help="imagenet (found locally), none, or a weights file")
    t.add_argument("--weights-dir", type=_path, default=None,
                   help="folder holding ImageNet weight files")
    t.add_argument("--epochs", type=int, default=10, help="phase 1 epochs (0 skips it)")
    t.add_argument("--fine-tune-epochs", type=int, default=10, help="phase 2 epochs (0 skips)")
    t.add_argument("--fine-tune-at", default=None,
                   help="first backbone layer (index or name) trained in phase 2")
    defaults = TrainConfig()
    t.add_argument("--lr", type=float, default=defaults.phase1.learning_rate)
    t.add_argument("--fine-tune-lr", type=float, default=defaults.phase2.learning_rate)
    t.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "rmsprop", "sgd"])
    t.add_argument("--fine-tune-optimizer", default="adam",
                   choices=["adam", "adamw", "rmsprop", "sgd"])
    t.add_argument("--fine-tune-schedule", default=defaults.phase2.schedule,
                   choices=get_args(Schedule), help="phase 2's rate over its epochs")
    t.add_argument("--patience", type=int, default=5, help="early stopping patience")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--augment", default="cached_views",
                   choices=["cached_views", "per_epoch", "off"])
    t.add_argument("--validation-split", type=float, default=0.2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=_path, default=None,
                   help="also write the model to this .keras file")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the --out file if it exists")
    t.add_argument("--device", dest="train_device", default=None,
                   help="auto, cpu or a device id (as the global --device)")
    t.add_argument("--devices", default="1",
                   help="how many devices share each batch: 1, a number or all (data "
                        "parallel; needs KERAS_BACKEND=jax for more than one)")
    t.add_argument("--multi-host", action="store_true",
                   help="one of several processes (hosts) training together: joins them "
                        "through keras.distribution.initialize (KERAS_DISTRIBUTION_* "
                        "variables, or Slurm's); use with --devices all")
    t.add_argument("--precision", default="auto",
                   choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                   help="auto: mixed precision on GPUs with tensor cores, else float32")
    t.set_defaults(func=_cmd_train)

    dv = sub.add_parser("devices", help="list the devices the Keras backend can train on")
    dv.set_defaults(func=_cmd_devices)

    from tlgui.cli_runs import add_parser as add_runs_parser

    add_runs_parser(sub)

    from tlgui.cli_cache import add_parser as add_cache_parser

    add_cache_parser(sub)

    d = sub.add_parser("datasets", help="sample data sets")
    dsub = d.add_subparsers(dest="datasets_command", required=True)
    f = dsub.add_parser("fetch", help="write a tensorflow-datasets image set as class folders")
    f.add_argument("name", help="e.g. tf_flowers, cats_vs_dogs")
    f.add_argument("dest", type=_path)
    f.add_argument("--data-dir", type=_path, default=None, help="local TFDS data folder")
    f.add_argument("--limit", type=int, default=None, help="at most this many images")
    f.set_defaults(func=_cmd_fetch)

    e = sub.add_parser("export", help="export a run's model")
    e.add_argument("run", type=_path, help="run folder or .keras file")
    e.add_argument("--format", default="keras",
                   choices=["keras", "savedmodel", "tflite", "onnx"])
    e.add_argument("--out", type=_path, required=True)
    e.add_argument("--overwrite", action="store_true",
                   help="replace files an earlier export left there (labels.txt too)")
    e.add_argument("--tta", action="store_true", help=TTA_HELP)
    e.set_defaults(func=_cmd_export)

    a = sub.add_parser("audit", help="find likely mislabeled images, duplicates and outliers")
    a.add_argument("data", help="folder of class folders (or with train/ and validation/ or test/)")
    a.add_argument("--csv", default=None, help="also write every finding to this CSV file")
    a.add_argument("--overwrite", action="store_true", help="replace an existing CSV file")
    a.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(REGISTRY))
    a.add_argument("--image-size", type=int, default=None,
                   help="side images are looked at (default: the backbone's ImageNet size)")
    a.add_argument("--weights", default="imagenet",
                   help="imagenet (found locally), none, or a weights file")
    a.add_argument("--weights-dir", default=None, help="folder holding ImageNet weight files")
    a.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    a.add_argument("--validation-split", type=float, default=0.2)
    a.add_argument("--top", type=int, default=10, help="findings shown per problem")
    a.set_defaults(func=_cmd_audit)

    pr = sub.add_parser("predict", help="classify images, folders or a mix")
    pr.add_argument("model", type=_path, help="a .keras file or run folder")
    pr.add_argument("paths", type=_path, nargs="+")
    pr.add_argument("--top-k", type=int, default=3)
    pr.add_argument("--csv", type=_path, default=None)
    pr.add_argument("--sort-into", type=_path, default=None)
    pr.add_argument("--min-confidence", type=float, default=0.0)
    pr.add_argument("--batch-size", type=int, default=32)
    pr.add_argument("--explain", type=_path, default=None, metavar="DIR",
                    help="also write a heat map of what the model looked at, per image, "
                         "as PNG files into this folder")
    pr.add_argument("--overwrite", action="store_true",
                    help="replace an existing --csv file, and same-named files in "
                         "--sort-into class folders")
    pr.add_argument("--tta", action="store_true", help=TTA_HELP)
    pr.set_defaults(func=_cmd_predict)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_native_logs()  # read by TensorFlow when it loads: before anything imports it
    _printable_streams()
    log_file = setup_logging(verbose=args.verbose)
    if args.self_test:
        from tlgui.selftest import run_self_test

        func: Any = lambda a: run_self_test(device=a.device)  # noqa: E731
    elif getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    else:
        func = args.func
    from tlgui.core.errors import TlguiError, os_reason

    details = f"details in {printable(log_file)}" if log_file else \
        "no log file could be written"
    with off_the_console():
        try:
            if args.self_test or args.command not in ("scan", "runs", "cache"):
                from tlgui.cli_train import device_setting
                from tlgui.core.devices import configure_process

                # Read by the backends when they load: set before Keras is imported.
                configure_process(device_setting(args))
                import_keras_quietly()
            return int(func(args))
        except TlguiError as exc:
            print(f"error: {printable_lines(str(exc))}", file=sys.stderr)
            log.info("failed: %s", exc, exc_info=True)
            return 1
        except KeyboardInterrupt:
            print("Interrupted.", file=sys.stderr)
            return 1
        except BrokenPipeError:
            # The reader of the output went away (``| head``): nothing is wrong.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except OSError as exc:
            log.exception("unexpected error")
            where = f" {printable(exc.filename)}:" if exc.filename else ""
            print(f"error:{where} {os_reason(exc)} ({details})", file=sys.stderr)
            return 1
        except Exception as exc:
            log.exception("unexpected error")
            print(f"error: {type(exc).__name__}: {printable(exc)} ({details})",
                  file=sys.stderr)
            return 1


def _printable_streams() -> None:
    """Never fail to print a file name that is not valid UTF-8: escape its bytes."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):
                reconfigure(errors="backslashreplace")


if __name__ == "__main__":
    sys.exit(main())
