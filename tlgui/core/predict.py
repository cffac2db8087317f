"""Classifying image files and folders with a saved classifier, loaded in Keras safe mode.

Images are decoded and resized exactly as for training (``decode_rgb`` then
``resize_to_square`` at the model's size) and classified in batches. A file that cannot
be read becomes a ``Prediction`` with its error, never an exception, and so does an
entry of an input folder that cannot be walked (a folder that cannot be opened, a link
to a folder). The user's input files and folders are only ever read: the CSV
(``prediction``) and sorted copies (``sorting``) go elsewhere.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlgui.core.entries import (
    FILE_GONE,
    EntryProblem,
    not_regular,
    printable,
    regular_file,
    walk_files,
)
from tlgui.core.errors import Cancelled, ModelFileError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.imageio import IMAGE_SUFFIXES, ImageProblem, decode_rgb
from tlgui.core.model_file import load_keras
from tlgui.core.model_meta import checked_image_size
from tlgui.core.prediction import Prediction, spreadsheet_safe, write_csv
from tlgui.core.resize import resize_to_square
from tlgui.core.runs import MODEL_FILE
from tlgui.core.sorting import UNSURE_FOLDER, check_sort_destination, safe_folder_name, sort_into

# Kept importable from here: the window and older scripts import them from this module.
__all__ = [
    "UNSURE_FOLDER",
    "LoadedClassifier",
    "Prediction",
    "Predictor",
    "check_sort_destination",
    "collect_images",
    "collect_inputs",
    "load_classifier",
    "load_image",
    "model_file_of",
    "model_image_size",
    "safe_folder_name",
    "sort_into",
    "spreadsheet_safe",
    "write_csv",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedClassifier:
    """A classifier loaded from a ``.keras`` file, with what is needed to feed it."""

    model: Any
    class_names: tuple[str, ...]
    image_size: int
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path = Path()


def model_file_of(path: str | Path) -> Path:
    """The ``.keras`` file a model argument names: the file, or a run folder's model.

    Raises:
        ModelFileError: a folder without a model, or not a ``.keras`` file.
    """
    path = Path(path).expanduser()
    if os.path.isdir(path):
        if not os.path.lexists(path / MODEL_FILE):
            raise ModelFileError(
                f"{printable(path)} holds no {MODEL_FILE}: it is not a run folder, or its "
                "run ended before the first epoch finished.")
        return path / MODEL_FILE
    if path.suffix.lower() != ".keras":
        raise ModelFileError(f"{printable(path.name)} is not a .keras file; give a .keras "
                             "file or a run folder.")
    return path


def load_classifier(path: str | Path) -> LoadedClassifier:
    """Loads a ``.keras`` classifier, or a run folder's ``model.keras``, in safe mode.

    Raises:
        ModelFileError: no model there, not a Keras file, damaged, crafted (see
            ``load_keras``), or it holds code (a ``Lambda`` layer) that would run on
            loading; the message names the file.
    """
    path = model_file_of(path)
    model, names, meta = load_keras(path)
    return LoadedClassifier(model, names, model_image_size(model, meta, path), meta, path)


def model_image_size(model: Any, meta: dict[str, Any], path: Path = Path()) -> int:
    """The square side a classifier works at: from its metadata, resize layer or input.

    Raises:
        ModelFileError: no size can be found, it is outside the sane range, or the
            metadata disagrees with the model's own resize layer or input.
    """
    own = None
    for layer in model.layers:
        if type(layer).__name__ == "Resizing":
            own = layer.height
            break
    shape = model.inputs[0].shape
    if own is None and len(shape) == 4 and shape[1] and shape[1] == shape[2]:
        own = shape[1]
    size = meta.get("image_size")
    if size is not None:
        size = checked_image_size(size, path)
        if own is not None and int(own) != size:
            # Images would be resized to one size, then by the model to another.
            raise ModelFileError(f"{printable(path.name)} says its images are {size} pixels "
                                 f"wide, but the model itself works at {int(own)}; the file "
                                 "was changed or damaged. It was not loaded.")
        return size
    if own is not None:
        return checked_image_size(own, path)
    raise ModelFileError(f"{path.name}: cannot tell which image size the model expects.")


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _key(p: Path) -> str:
    try:
        return os.path.realpath(p)
    except (OSError, ValueError):
        return os.path.abspath(p)


def collect_inputs(paths: Iterable[str | Path]) -> tuple[list[Path], dict[Path, str]]:
    """Expands files and folders into files to classify, and entries that cannot be.

    Folders are walked recursively (links to folders are not followed, so a link to
    ``/`` or a loop cannot lead the walk away) and give their entries with an image
    suffix; hidden files and folders are skipped. Files named directly are kept
    whatever their suffix, and so are missing paths, which classify as an error.

    Returns:
        (every path, each once, in a stable order; the reason for those among them
        that cannot be read: a folder that cannot be opened, a link to a folder...).
    """
    out: list[Path] = []
    reasons: dict[Path, str] = {}
    seen: set[str] = set()
    real_folders: dict[str, str] = {}

    def key_of(p: Path) -> str:
        # A file that is not a link lies where its folder really is: one look at the
        # file and one ``realpath`` per folder, not one per file (each looks at every
        # folder above it; 100,000 files took 1.4 s).
        text = os.fspath(p)
        folder, name = os.path.split(text)
        try:
            if folder and name not in ("", ".", "..") \
                    and not stat.S_ISLNK(os.lstat(text).st_mode):
                real = real_folders.get(folder)
                if real is None:
                    real = real_folders[folder] = _key(Path(folder))
                return os.path.join(real, name)
        except (OSError, ValueError):
            pass
        return _key(p)

    def add(p: Path, reason: str | None = None) -> None:
        key = key_of(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
            if reason is not None:
                reasons[p] = reason

    for raw in paths:
        p = Path(raw).expanduser()
        if not os.path.isdir(p):
            add(p)
            continue
        for path, reason in walk_files(p, skip=_hidden):
            if reason is not None or path.suffix.lower() in IMAGE_SUFFIXES:
                add(path, reason)
    return out, reasons


def collect_images(paths: Iterable[str | Path]) -> list[Path]:
    """The files ``collect_inputs`` finds, unreadable entries included (they classify
    as errors)."""
    return collect_inputs(paths)[0]


def load_image(path: Path, size: int) -> np.ndarray:
    """Pixels of a file as the model sees them: ``uint8 [size, size, 3]``.

    Raises:
        ImageProblem: the file is missing, unreadable, not a regular file or not an
            image.
    """
    try:
        regular_file(path)  # a pipe or a device is refused here, never opened
    except EntryProblem as exc:
        if exc.reason == FILE_GONE:
            raise ImageProblem("no such file or folder") from exc
        if exc.reason == not_regular(stat.S_IFDIR):
            raise ImageProblem("a folder, not an image file") from exc
        raise ImageProblem(exc.reason) from exc
    # The same decode and resize as the training pixel cache.
    return resize_to_square(decode_rgb(path, draft_size=2 * size), size)


class Predictor:
    """A loaded classifier that classifies files, folders and pixel arrays."""

    def __init__(self, loaded: LoadedClassifier, model: Any = None) -> None:
        self.loaded = loaded  # the model as saved: heat maps are made from it
        self.model = loaded.model if model is None else model  # what classifies

    @classmethod
    def load(cls, path: str | Path, mirror: bool = False) -> Predictor:
        """Loads a ``.keras`` file or a run folder's model in safe mode.

        Args:
            path: the model file or run folder.
            mirror: average each image's answer with its mirror's (``mirror_tta``).

        Raises:
            ModelFileError: see ``load_classifier``; or ``mirror`` was asked of a model
                tlgui did not build.
        """
        loaded = load_classifier(path)
        if not mirror:
            return cls(loaded)
        from tlgui.core.errors import ConfigError
        from tlgui.core.mirror_tta import mirror_average

        try:
            return cls(loaded, mirror_average(loaded.model))
        except ConfigError as exc:
            raise ModelFileError(f"{printable(loaded.path)}: {exc}") from exc

    @property
    def mirror(self) -> bool:
        """True when answers are averaged over each image and its mirror."""
        from tlgui.core.mirror_tta import has_mirror

        return has_mirror(self.model)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Output order of the classifier."""
        return self.loaded.class_names

    @property
    def image_size(self) -> int:
        """The side of the square images the model sees."""
        return self.loaded.image_size

    @property
    def path(self) -> Path:
        """The model file."""
        return self.loaded.path

    def predict_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, classes]`` for ``uint8 [n, height, width, 3]`` images."""
        return np.asarray(self.model.predict_on_batch(pixels), dtype=np.float32)

    def top_k(self, probs: np.ndarray, k: int) -> tuple[tuple[str, float], ...]:
        """The ``k`` most likely (class, probability) pairs of one probability row."""
        order = np.argsort(-probs, kind="stable")[:max(1, k)]
        return tuple((self.class_names[i], float(probs[i])) for i in order)

    def predict_paths(self, paths: Iterable[str | Path], top_k: int = 3,
                      report: Report = ignore, cancel: threading.Event | None = None,
                      batch_size: int = 32) -> list[Prediction]:
        """Classifies files and folders (recursively) in batches.

        Args:
            paths: files, folders or a mix.
            top_k: how many classes to keep per file.
            report: receives ``StageProgress("predict", ...)`` after each batch.
            cancel: set it to stop; ``Cancelled`` is raised within one batch.
            batch_size: images per model call.

        Returns:
            One ``Prediction`` per file, in ``collect_images`` order; unreadable
            files carry their error.

        Raises:
            Cancelled: ``cancel`` was set.
        """
        files, unreadable = collect_inputs(paths)
        rows: list[Prediction] = []
        for batch in self.iter_predictions(files, unreadable, top_k, report, cancel,
                                           batch_size):
            rows += batch
        return rows

    def iter_predictions(self, files: Sequence[Path], unreadable: Mapping[Path, str],
                         top_k: int = 3, report: Report = ignore,
                         cancel: threading.Event | None = None,
                         batch_size: int = 32) -> Iterator[list[Prediction]]:
        """Classifies files a batch at a time, yielding each batch's predictions.

        Only the batch being classified and the next one (decoded meanwhile) are in
        memory, so a caller that writes each batch out (``prediction.prediction_csv``)
        handles any number of files in the same memory.

        Args:
            files: the files, as ``collect_inputs`` gives them.
            unreadable: ``collect_inputs``'s reasons for the entries that cannot be read.
            top_k: how many classes to keep per file.
            report: receives ``StageProgress("predict", ...)`` after each batch.
            cancel: set it to stop; ``Cancelled`` is raised within one batch.
            batch_size: images per model call.

        Yields:
            The predictions of each batch, in the order of ``files``; unreadable files
            carry their error.

        Raises:
            Cancelled: ``cancel`` was set.
        """
        cancel = cancel or threading.Event()
        size = self.image_size
        step = max(1, batch_size)
        done = 0

        def work(path: Path) -> np.ndarray | str:
            if cancel.is_set():
                return "cancelled"
            if path in unreadable:
                return unreadable[path]
            try:
                return load_image(path, size)
            except ImageProblem as exc:
                return exc.reason
            except Exception as exc:  # one odd file must not end a run over thousands
                log.exception("decoding %s failed", path)
                return f"cannot read image ({type(exc).__name__}: {exc})"

        pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2))
        try:
            # Decode the next batch while the model runs on this one.
            ahead = [pool.submit(work, p) for p in files[:step]]
            for start in range(0, len(files), step):
                chunk = files[start:start + step]
                current = ahead
                ahead = [pool.submit(work, p) for p in files[start + step:start + 2 * step]]
                loaded = [f.result() for f in current]
                if cancel.is_set():
                    raise Cancelled("Prediction cancelled.")
                good = [i for i, x in enumerate(loaded) if not isinstance(x, str)]
                probs = self.predict_pixels(np.stack([loaded[i] for i in good])) \
                    if good else np.zeros((0, len(self.class_names)), np.float32)
                by_index = dict(zip(good, probs, strict=True))
                batch = []
                for i, path in enumerate(chunk):
                    item = loaded[i]
                    batch.append(Prediction(path, error=item) if isinstance(item, str)
                                 else Prediction(path, self.top_k(by_index[i], top_k)))
                del loaded, probs, by_index
                done += len(batch)
                report(StageProgress("predict", done, len(files), "Classifying images"))
                yield batch
        finally:
            # Cancelled, failed, or the caller stopped early: the decodes queued ahead
            # are dropped, the running ones finish.
            pool.shutdown(wait=True, cancel_futures=True)
