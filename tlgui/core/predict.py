"""Classifying image files and folders with a saved classifier, loaded in Keras safe mode.

Images are decoded and resized exactly as for training (``decode_rgb`` then
``resize_to_square`` at the model's size) and classified in batches. A file that cannot
be read becomes a ``Prediction`` with its error, never an exception. The user's input
files and folders are only ever read: sorting copies into a separate destination.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlgui.core.errors import Cancelled, ConfigError, ModelFileError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.imageio import IMAGE_SUFFIXES, ImageProblem, decode_rgb
from tlgui.core.model_file import load_keras
from tlgui.core.prediction import Prediction, write_csv
from tlgui.core.resize import resize_to_square
from tlgui.core.runs import MODEL_FILE

# Sorting lives in the keras-free ``sorting`` (the window copies in its own process);
# kept importable from here for scripts and tests.
from tlgui.core.sorting import (  # noqa: F401
    UNSURE_FOLDER,
    check_sort_destination,
    safe_folder_name,
    sort_into,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedClassifier:
    """A classifier loaded from a ``.keras`` file, with what is needed to feed it."""

    model: Any
    class_names: tuple[str, ...]
    image_size: int
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path = Path()


def load_classifier(path: str | Path) -> LoadedClassifier:
    """Loads a ``.keras`` classifier, or a run folder's ``model.keras``, in safe mode.

    Raises:
        ModelFileError: no model there, not a Keras file, or it holds code (a
            ``Lambda`` layer) that would run on loading; the message names the file.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise ModelFileError(
                f"{path} holds no {MODEL_FILE}: it is not a run folder, or its run ended "
                "before the first epoch finished.")
        path = path / MODEL_FILE
    elif path.suffix.lower() != ".keras":
        raise ModelFileError(f"{path.name} is not a .keras file; give a .keras file or a "
                             "run folder.")
    model, names, meta = load_keras(path)
    return LoadedClassifier(model, names, model_image_size(model, meta, path), meta, path)


def model_image_size(model: Any, meta: dict[str, Any], path: Path = Path()) -> int:
    """The square side a classifier works at: from its metadata, resize layer or input."""
    size = meta.get("image_size")
    if isinstance(size, int) and size > 0:
        return size
    for layer in model.layers:
        if type(layer).__name__ == "Resizing":
            return int(layer.height)
    shape = model.inputs[0].shape
    if shape[1] and shape[1] == shape[2]:
        return int(shape[1])
    raise ModelFileError(f"{path.name}: cannot tell which image size the model expects.")


def _hidden(name: str) -> bool:
    return name.startswith(".")


def collect_images(paths: Iterable[str | Path]) -> list[Path]:
    """Expands files and folders into a list of files, each once, in a stable order.

    Folders are walked recursively (symlinked folders are not followed) and give
    their files with an image suffix; hidden files and folders are skipped. Files
    named directly are kept whatever their suffix, and so are missing paths, which
    classify as an error.
    """
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve() if p.exists() else p.absolute()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for raw in paths:
        p = Path(raw).expanduser()
        if not p.is_dir():
            add(p)
            continue
        for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            for name in sorted(filenames):
                if not _hidden(name) and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    add(Path(dirpath) / name)
    return out


def load_image(path: Path, size: int) -> np.ndarray:
    """Pixels of a file as the model sees them: ``uint8 [size, size, 3]``.

    Raises:
        ImageProblem: the file is missing, unreadable or not an image.
    """
    if not path.exists():
        raise ImageProblem("no such file or folder")
    if path.is_dir():
        raise ImageProblem("a folder, not an image file")
    # The same decode and resize as the training pixel cache.
    return resize_to_square(decode_rgb(path, draft_size=2 * size), size)


class Predictor:
    """A loaded classifier that classifies files, folders and pixel arrays."""

    def __init__(self, loaded: LoadedClassifier) -> None:
        self.loaded = loaded

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """Loads a ``.keras`` file or a run folder's model in safe mode.

        Raises:
            ModelFileError: see ``load_classifier``.
        """
        return cls(load_classifier(path))

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
        return np.asarray(self.loaded.model.predict_on_batch(pixels), dtype=np.float32)

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
        cancel = cancel or threading.Event()
        files = collect_images(paths)
        size = self.image_size
        chunks = [files[i:i + max(1, batch_size)] for i in range(0, len(files),
                                                                  max(1, batch_size))]
        rows: list[Prediction] = []

        def work(path: Path) -> np.ndarray | str:
            if cancel.is_set():
                return "cancelled"
            try:
                return load_image(path, size)
            except ImageProblem as exc:
                return exc.reason
            except Exception as exc:  # one odd file must not end a run over thousands
                log.exception("decoding %s failed", path)
                return f"cannot read image ({type(exc).__name__}: {exc})"

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
            # Decode the next batch while the model runs on this one.
            ahead: list[Future[np.ndarray | str]] = [pool.submit(work, p)
                                                     for p in (chunks[0] if chunks else [])]
            for ci, chunk in enumerate(chunks):
                current = ahead
                nxt = chunks[ci + 1] if ci + 1 < len(chunks) else []
                ahead = [pool.submit(work, p) for p in nxt]
                loaded = [f.result() for f in current]
                if cancel.is_set():
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise Cancelled("Prediction cancelled.")
                good = [i for i, x in enumerate(loaded) if not isinstance(x, str)]
                probs = self.predict_pixels(np.stack([loaded[i] for i in good])) \
                    if good else np.zeros((0, len(self.class_names)), np.float32)
                by_index = dict(zip(good, probs, strict=True))
                for i, path in enumerate(chunk):
                    item = loaded[i]
                    rows.append(Prediction(path, error=item) if isinstance(item, str)
                                else Prediction(path, self.top_k(by_index[i], top_k)))
                report(StageProgress("predict", len(rows), len(files), "Classifying images"))
        return rows


def _say(line: str) -> None:
    print(line)  # noqa: T201 - the predict command's output


def predict_cli(args: argparse.Namespace, report: Report = ignore) -> int:
    """Runs ``tlgui predict``: prints or writes predictions and optionally sorts copies.

    Returns:
        0 when at least one image was classified, 1 otherwise.

    Raises:
        ConfigError: an option is out of range or the sort destination overlaps an input.
        ModelFileError: the model cannot be loaded safely.
    """
    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (got {args.top_k}).")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise ConfigError(f"--min-confidence must be between 0 and 1 (got "
                          f"{args.min_confidence}).")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1 (got {args.batch_size}).")
    if args.sort_into:
        check_sort_destination(args.sort_into, args.paths)
    explain_dir = getattr(args, "explain", None)
    if explain_dir:
        from tlgui.core.explain import check_explain_destination

        check_explain_destination(explain_dir, args.paths)
    predictor = Predictor.load(args.model)
    k = min(args.top_k, len(predictor.class_names))
    rows = predictor.predict_paths(args.paths, k, report, batch_size=args.batch_size)
    if not rows:
        _say(f"No image files found in {', '.join(map(str, args.paths))}.")
        return 1
    failed = sum(r.error is not None for r in rows)
    if args.csv:
        _say(f"CSV written to {write_csv(rows, args.csv, k)}")
    else:
        for r in rows:
            if r.error:
                _say(f"{r.path}\terror: {r.error}")
            else:
                _say(f"{r.path}\t" + "\t".join(f"{c} {p:.3f}" for c, p in r.top))
    _say(f"{len(rows) - failed} image(s) classified, {failed} unreadable.")
    if args.sort_into:
        counts = sort_into(rows, args.sort_into, args.min_confidence, args.paths, report)
        for folder, n in sorted(counts.items()):
            _say(f"{n:6d}  {Path(args.sort_into) / folder}")
    if explain_dir:
        from tlgui.core.explain import Explainer, write_explanations

        maps = write_explanations(Explainer.of(predictor.loaded),
                                  [r.path for r in rows if r.error is None], explain_dir,
                                  report, batch_size=min(args.batch_size, 16))
        _say(f"{len(maps)} heat map(s) written to {explain_dir}")
    return 0 if failed < len(rows) else 1
