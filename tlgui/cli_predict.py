"""``tlgui predict``: every destination checked before the model loads; results never lost.

The files to classify are found first (names only: nothing is decoded), so that the CSV
check knows every one of them and their folders: a CSV that is a hard link to an image,
or lies in the folder of an image given by name, is refused before any work.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from pathlib import Path

from tlgui.cli_interrupt import ctrl_c_cancels
from tlgui.core.entries import printable
from tlgui.core.errors import ConfigError
from tlgui.core.events import Report, ignore


def _say(line: str) -> None:
    print(line)  # noqa: T201 - the predict command's output


def _check_apart(args: argparse.Namespace) -> None:
    """The CSV, the sort folder and the heat-map folder are three places: one inside
    another would be written over by the same job (found only after classifying)."""
    named = [(f"--{flag.replace('_', '-')}", Path(getattr(args, flag)).expanduser())
             for flag in ("csv", "sort_into", "explain") if getattr(args, flag, None)]
    for i, (flag_a, a) in enumerate(named):
        for flag_b, b in named[i + 1:]:
            ra, rb = Path(os.path.realpath(a)), Path(os.path.realpath(b))
            if ra == rb or ra.is_relative_to(rb) or rb.is_relative_to(ra):
                raise ConfigError(f"{flag_a} {printable(a)} and {flag_b} {printable(b)} "
                                  "overlap: the job would write one over the other. "
                                  "Choose separate places.")


def predict_cli(args: argparse.Namespace, report: Report = ignore) -> int:
    """Runs ``tlgui predict``: prints or writes predictions and optionally sorts copies.

    The CSV and the sort destination are checked before the model is loaded: neither
    may be an input, lie inside an input folder or be the model; an existing CSV is
    replaced only with ``--overwrite``.

    Returns:
        0 when at least one image was classified, 1 otherwise.

    Raises:
        ConfigError: an option is out of range.
        UnsafeDestination: the CSV or sort destination overlaps an input or the model.
        DestinationExists: the CSV exists and ``--overwrite`` was not given.
        ModelFileError: the model cannot be loaded safely.
    """
    from tlgui.core.predict import (
        Predictor,
        check_sort_destination,
        collect_inputs,
        model_file_of,
        sort_into,
    )
    from tlgui.core.prediction import Prediction, check_csv_destination, prediction_csv

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (got {args.top_k}).")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise ConfigError(f"--min-confidence must be between 0 and 1 (got "
                          f"{args.min_confidence}).")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1 (got {args.batch_size}).")
    model = model_file_of(args.model)
    overwrite = getattr(args, "overwrite", False)
    _check_apart(args)
    # Walked once: the CSV check and the classification see the same files.
    files, unreadable = collect_inputs(args.paths)
    if args.csv:
        check_csv_destination(args.csv, inputs=args.paths, files=files, model=model,
                              overwrite=overwrite)
    if args.sort_into:
        check_sort_destination(args.sort_into, args.paths)
    explain_dir = getattr(args, "explain", None)
    if explain_dir:
        from tlgui.core.explain import check_explain_destination

        check_explain_destination(explain_dir, args.paths)
    predictor = Predictor.load(model, mirror=getattr(args, "tta", False))
    if predictor.loaded.meta.get("class_names_missing"):
        _say(f"warning: {printable(model.name)} holds no class names (it was not saved by "
             "tlgui); classes are shown as class_0, class_1, ...")
    if not files:
        _say(f"No image files found in {', '.join(printable(p) for p in args.paths)}.")
        return 1
    k = min(args.top_k, len(predictor.class_names))
    cancel = threading.Event()
    # The rows are kept only for what needs them all at the end; a CSV gets each batch
    # as it comes, so 100,000 files take the memory of a few batches.
    keep = not args.csv or bool(args.sort_into) or bool(explain_dir)
    rows: list[Prediction] = []
    total = failed = 0
    with ctrl_c_cancels(cancel, "the prediction"), contextlib.ExitStack() as stack:
        # With a threshold the CSV says which rows fell below it (``unsure``).
        csv_out = stack.enter_context(prediction_csv(
            args.csv, k, min_confidence=args.min_confidence or None, overwrite=overwrite,
            inputs=args.paths, files=files, model=model, report=report)) \
            if args.csv else None
        for batch in predictor.iter_predictions(files, unreadable, k, report, cancel,
                                                args.batch_size):
            if csv_out is not None:
                csv_out.write(batch)
            total += len(batch)
            failed += sum(r.error is not None for r in batch)
            if keep:
                rows += batch
    if csv_out is not None:
        _say(f"CSV written to {printable(csv_out.path)}")
    else:
        for r in rows:
            if r.error:
                _say(f"{printable(r.path)}\terror: {printable(r.error)}")
            else:
                tops = "\t".join(f"{printable(c)} {p:.3f}" for c, p in r.top)
                _say(f"{printable(r.path)}\t{tops}")
    _say(f"{total - failed} image(s) classified, {failed} unreadable.")
    if args.sort_into:
        with ctrl_c_cancels(cancel, "the sorting"):
            counts = sort_into(rows, args.sort_into, args.min_confidence, args.paths, report,
                               cancel, overwrite=overwrite)
        for folder, n in sorted(counts.items()):
            _say(f"{n:6d}  {printable(Path(args.sort_into) / folder)}")
    if explain_dir:
        from tlgui.core.explain import Explainer, write_explanations

        maps = write_explanations(Explainer.of(predictor.loaded),
                                  [r.path for r in rows if r.error is None], explain_dir,
                                  report, batch_size=min(args.batch_size, 16))
        _say(f"{len(maps)} heat map(s) written to {printable(explain_dir)}")
    return 0 if failed < total else 1
