"""Where an export's files go: the checks before any work, staging, and failure messages.

Every file an export writes, companions included, is checked before the conversion
starts (``destinations``): none replaces the model being exported, and an existing file
(another model's ``labels.txt``, an earlier export) is replaced only with
``overwrite=True``; a SavedModel never replaces a folder of other files. Files are
written under temporary names and moved into place together when all are complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from tlgui.core.atomic import TEMP_PREFIX, atomic_path, missing_folders, set_default_mode
from tlgui.core.destinations import check_not_input, check_output, check_writable_folder
from tlgui.core.entries import kind_of, printable
from tlgui.core.errors import (
    DestinationExists,
    ExportError,
    UnsafeDestination,
    WriteError,
    os_reason,
)

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
LABELS_FILE = "labels.txt"
SUFFIX = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}


def output_paths(fmt: str, out: Path) -> list[Path]:
    """The files (or SavedModel folder) an export to ``out`` writes, main one first."""
    out = Path(out)
    if fmt == "savedmodel":
        return [out]
    suffix = SUFFIX[fmt]
    main = out if out.suffix.lower() == suffix else out / f"model{suffix}"
    if fmt == "keras":
        return [main]
    if fmt == "tflite":
        return [main, main.with_name(f"{main.stem}_quant{suffix}"), main.parent / LABELS_FILE]
    return [main, main.parent / LABELS_FILE]


def failure(fmt: str, out: Path, exc: Exception) -> ExportError:
    """The error for a failed conversion or write: the user's file and the reason."""
    if isinstance(exc, WriteError):  # already names the user's file
        return ExportError(str(exc))
    if isinstance(exc, OSError):
        tmp_root = tempfile.gettempdir()
        if exc.filename and str(exc.filename).startswith(tmp_root):
            return ExportError(f"The {fmt} export to {printable(out)} failed: the temporary "
                               f"folder {tmp_root} cannot be written ({os_reason(exc)}).")
        return ExportError(str(WriteError(out, exc, f"the {fmt} export")))
    # Converters report file system trouble in their own words, naming temp files.
    text = str(exc)
    for marker, reason in (("No space left on device", "the disk is full"),
                           ("Read-only file system", "the disk is read-only"),
                           ("Permission denied", "permission denied"),
                           ("Disk quota exceeded", "the disk quota is used up")):
        if marker in text:
            return ExportError(f"Cannot write the {fmt} export {printable(out)}: {reason} "
                               f"({marker}).")
    first = text.strip().splitlines()[0][:300] if text.strip() else ""
    return ExportError(f"The {fmt} export to {printable(out)} failed: "
                       f"{type(exc).__name__}{': ' if first else ''}{first}")


@contextlib.contextmanager
def staged(targets: list[Path], overwrite: bool) -> Iterator[list[Path]]:
    """Temp paths beside ``targets``; all are moved into place only if the block succeeds.

    Without ``overwrite`` a target that appeared meanwhile is not replaced.
    """
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(target, replace=overwrite))
                for target in targets]
        try:
            yield tmps
        except WriteError:
            raise
        except OSError as exc:
            # A write without a file name in its error (a full disk) is the export's,
            # whichever of its files it was writing: name the main one.
            if exc.filename is None or str(exc.filename) in map(str, tmps):
                raise WriteError(targets[0], exc) from exc
            raise


@contextlib.contextmanager
def staged_dir(target: Path, overwrite: bool) -> Iterator[Path]:
    """A temp folder beside ``target`` that replaces it only if the block succeeds.

    An existing ``target`` is replaced only when it is itself a SavedModel and
    ``overwrite`` is set, so an export never deletes a folder of the user's other files.
    """
    _check_savedmodel_target(target, overwrite)
    created = missing_folders(target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
    except OSError as exc:
        raise WriteError(target, exc, "the SavedModel") from exc
    old: Path | None = None
    done = False
    try:
        yield tmp
        set_default_mode(tmp)
        if target.exists():
            _check_savedmodel_target(target, overwrite)
            old = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
                old = None
            raise
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        for folder in [] if done else created:  # the folders made for a failed export
            with contextlib.suppress(OSError):
                folder.rmdir()


def _check_savedmodel_target(target: Path, overwrite: bool) -> None:
    if not os.path.lexists(target):
        return
    if not (target.is_dir() and not target.is_symlink()
            and (target / "saved_model.pb").is_file()):
        raise UnsafeDestination(target, f"{printable(target)} already exists and is not a "
                                        "SavedModel folder; choose a new folder name.")
    if not overwrite:
        raise DestinationExists(target)


def check_export_target(fmt: str, out: Path, *, overwrite: bool = False,
                        model: Path | None = None, inputs: Iterable[Path] = ()) -> None:
    """Checks every file a ``fmt`` export to ``out`` writes, before any work.

    Args:
        fmt: the format.
        out: the destination given by the user.
        overwrite: existing files may be replaced (never the model, never a folder of
            other files).
        model: the model file being exported, which is never replaced.
        inputs: folders never written into (the dataset the model was trained on).

    Raises:
        ExportError: unknown format.
        UnsafeDestination: a destination is the model, a folder where a file goes, a
            file where a folder goes, or a folder of other files.
        DestinationExists: a file is there and ``overwrite`` is False.
        WriteError: the folder cannot be written.
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")
    out = Path(out).expanduser()
    inputs = list(inputs)
    if fmt == "savedmodel":
        check_not_input(out, inputs, model)
        _check_savedmodel_target(out, overwrite)
        check_writable_folder(out.parent)
        return
    paths = output_paths(fmt, out)
    if paths[0].parent == out and os.path.lexists(out) and not out.is_dir():
        raise UnsafeDestination(out, f"{printable(out)} is {kind_of(os.lstat(out).st_mode)}; "
                                     f"an export to a name without {SUFFIX[fmt]} writes a "
                                     f"folder there. Give a name ending in {SUFFIX[fmt]}, "
                                     "or a folder.")
    for path in paths:
        check_output(path, inputs=inputs, model=model, overwrite=overwrite)
