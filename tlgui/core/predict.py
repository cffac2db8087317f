"""Classifying image files and folders with a saved classifier, loaded in Keras safe mode.

Images are decoded and resized exactly as for training (``decode_rgb`` then
``resize_to_square`` at the model's size) and classified in batches. A file that cannot
be read becomes a ``Prediction`` with its error, never an exception. The user's input
files and folders are only ever read: sorting copies into a separate destination.
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import io
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlgui.core.atomic import atomic_path
from tlgui.core.errors import Cancelled, ConfigError, ModelFileError
from tlgui.core.events import Notice, Report, StageProgress, ignore
from tlgui.core.imageio import IMAGE_SUFFIXES, ImageProblem, decode_rgb
from tlgui.core.model_file import load_keras
from tlgui.core.resize import resize_to_square
from tlgui.core.runs import MODEL_FILE

log = logging.getLogger(__name__)

UNSURE_FOLDER = "_unsure"
_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


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


@dataclass(frozen=True)
class Prediction:
    """The result for one file.

    Attributes:
        path: the file as found.
        top: (class name, probability) pairs, most likely first; empty on error.
        error: why the file could not be classified, or None.
    """

    path: Path
    top: tuple[tuple[str, float], ...] = ()
    error: str | None = None

    @property
    def label(self) -> str | None:
        """The most likely class, or None on error."""
        return self.top[0][0] if self.top else None

    @property
    def confidence(self) -> float:
        """The probability of the most likely class (0 on error)."""
        return self.top[0][1] if self.top else 0.0


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


def write_csv(rows: Sequence[Prediction], path: str | Path, top_k: int | None = None) -> Path:
    """Writes predictions as CSV, atomically.

    Columns: ``path``, ``class``, ``probability`` (the top-1), then ``top1_class``,
    ``top1_probability`` ... ``topK_class``, ``topK_probability``, then ``error``
    (empty when the file was classified).

    Returns:
        The path written.
    """
    k = top_k if top_k is not None else max((len(r.top) for r in rows), default=1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["path", "class", "probability"]
    for i in range(1, k + 1):
        header += [f"top{i}_class", f"top{i}_probability"]
    writer.writerow([*header, "error"])
    for r in rows:
        cells = [str(r.path), r.label or "", f"{r.confidence:.6f}" if r.top else ""]
        for i in range(k):
            cells += [r.top[i][0], f"{r.top[i][1]:.6f}"] if i < len(r.top) else ["", ""]
        writer.writerow([*cells, r.error or ""])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return Path(path)


def safe_folder_name(class_name: str) -> str:
    """A class name usable as a folder name on every system."""
    name = _UNSAFE_CHARS.sub("_", class_name).strip().rstrip(". ")
    return name if name and name not in (".", "..") else "_"


def check_sort_destination(dest: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuses a sort destination inside an input folder, or holding one.

    Raises:
        ConfigError: copying there would change a folder being classified.
    """
    d = Path(dest).expanduser().resolve()
    for raw in inputs:
        src = Path(raw).expanduser()
        if not src.is_dir():
            continue
        s = src.resolve()
        if d == s or d.is_relative_to(s) or s.is_relative_to(d):
            raise ConfigError(
                f"The sort destination {dest} overlaps the input folder {raw}; input "
                "folders are never changed, so choose a destination outside it.")


def _free_name(folder: Path, name: str, source: Path) -> Path | None:
    """Where to copy ``source``; None when an identical copy is already there."""
    target = folder / name
    n = 2
    while target.exists():
        if target.is_file() and filecmp.cmp(source, target, shallow=False):
            return None
        stem, suffix = Path(name).stem, Path(name).suffix
        target = folder / f"{stem} ({n}){suffix}"
        n += 1
    return target


def sort_into(rows: Sequence[Prediction], dest: str | Path, min_confidence: float = 0.0,
              inputs: Iterable[str | Path] = (), report: Report = ignore,
              cancel: threading.Event | None = None) -> dict[str, int]:
    """Copies (never moves) each classified file into ``dest/<class>/``.

    Files whose top probability is below ``min_confidence`` go to ``dest/_unsure/``;
    files that could not be read are left out. A name already taken gets a
    `` (2)`` suffix; an identical file already there is not copied again. Each copy
    is written atomically.

    Args:
        rows: predictions from ``Predictor.predict_paths``.
        dest: the destination folder (created when missing).
        min_confidence: top-1 probability below which a file counts as unsure.
        inputs: the paths that were classified; ``dest`` must not overlap them.
        report: receives ``StageProgress("sort", ...)`` and a ``Notice`` per failed copy.
        cancel: set it to stop; ``Cancelled`` is raised between files.

    Returns:
        Files now in each destination folder from this call, by folder name.

    Raises:
        ConfigError: ``dest`` overlaps an input folder.
        Cancelled: ``cancel`` was set.
    """
    cancel = cancel or threading.Event()
    check_sort_destination(dest, inputs)
    dest = Path(dest).expanduser()
    counts: dict[str, int] = {}
    usable = [(r, r.label) for r in rows if r.error is None and r.label is not None]
    for done, (r, label) in enumerate(usable, start=1):
        if cancel.is_set():
            raise Cancelled("Sorting cancelled; the files copied so far are complete.")
        folder = UNSURE_FOLDER if r.confidence < min_confidence else safe_folder_name(label)
        try:
            (dest / folder).mkdir(parents=True, exist_ok=True)
            target = _free_name(dest / folder, r.path.name, r.path)
            if target is not None:
                with atomic_path(target) as tmp:
                    shutil.copy2(r.path, tmp)
        except OSError as exc:
            log.warning("cannot copy %s into %s: %s", r.path, dest / folder, exc)
            report(Notice("warning", f"Cannot copy {r.path} into {dest / folder}: {exc}"))
            continue
        counts[folder] = counts.get(folder, 0) + 1
        report(StageProgress("sort", done, len(usable), "Copying into class folders"))
    return counts


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
