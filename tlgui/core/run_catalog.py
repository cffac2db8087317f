"""The runs a user has made: list them, label them, delete one, find one by name.

Plain files and no Keras, so the window and ``tlgui runs`` can both use it. Every file
of a run folder is read with a size bound (``runs.read_json``); a damaged folder is
listed with the reason, never raises.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlgui.core.atomic import atomic_write_json
from tlgui.core.backbones import DEFAULT_SIZE_BEFORE_ADR_013, REGISTRY
from tlgui.core.errors import TlguiError, os_reason
from tlgui.core.paths import runs_dir
from tlgui.core.runs import EVALUATION_FILE, MODEL_FILE, read_json, run_state

log = logging.getLogger(__name__)
NOTES_FILE = "notes.json"
MARKER_FILES = ("status.json", "config.json")
MAX_NAME = 120
MAX_NOTE = 4000
# A folder renamed to this prefix is being deleted: never listed, removed by the next delete.
DELETING_PREFIX = ".tlgui-deleting-"


class RunError(TlguiError):
    """A run folder cannot be found, read, changed or deleted."""


@dataclass(frozen=True)
class RunRecord:
    """One run as the Runs view and ``tlgui runs`` show it.

    Attributes:
        path: the run folder.
        label: the user's name for it ("" when none was given).
        note: the user's note.
        state: ``complete``, ``cancelled``, ``incomplete``, ``failed``, ``running`` or
            ``unknown`` (status unreadable).
        dataset: the dataset folder it was trained on, or None when not recorded.
        backbone: registry name of the backbone ("" when unknown).
        image_size: the side the backbone saw (the backbone's default when the config
            left it open), or None when unknown.
        started: start time as ``YYYY-MM-DD HH:MM:SS`` ("" when unknown).
        started_unix: start time in seconds since the epoch, or None.
        duration_s: wall time of the run, or None while running or when unknown.
        phase_accuracy: best validation accuracy of each phase's epochs (``status.json``'s
            figure for a phase without epochs in the history).
        best_val_accuracy: best validation accuracy of any epoch, or None.
        epochs: epochs finished, both phases together.
        has_model: the folder holds ``model.keras``.
        has_evaluation: the folder holds ``evaluation.json``.
        reason: why the run failed or what in the folder is damaged ("" when nothing).
    """

    path: Path
    label: str = ""
    note: str = ""
    state: str = "unknown"
    dataset: Path | None = None
    backbone: str = ""
    image_size: int | None = None
    started: str = ""
    started_unix: float | None = None
    duration_s: float | None = None
    phase_accuracy: dict[int, float] = field(default_factory=dict)
    best_val_accuracy: float | None = None
    epochs: int = 0
    has_model: bool = False
    has_evaluation: bool = False
    reason: str = ""

    @property
    def name(self) -> str:
        """The user's label, else the folder name."""
        return self.label or self.path.name

    @property
    def model_path(self) -> Path:
        """The run's model file (it may not exist: see ``has_model``)."""
        return self.path / MODEL_FILE


def looks_like_run(path: Path) -> bool:
    """True for a folder holding a run's ``status.json`` or ``config.json`` (as any kind
    of entry: a damaged run is listed with its reason, not left out)."""
    return path.is_dir() and any(os.path.lexists(path / name) for name in MARKER_FILES)


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _read_dict(path: Path, problems: list[str]) -> dict[str, Any] | None:
    """A run file's object; None when it is missing, or damaged (then with a problem)."""
    if not os.path.lexists(path):
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        problems.append(f"{path.name} is not readable ({reason})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name} does not hold an object")
        return None
    return data


def _text(data: dict[str, Any], key: str) -> str:
    """A text field of a run file; "" when absent or of another type (a planted
    ``{"a": 1}`` or ``["x"]`` is not shown as if it were a name)."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


def read_history(run: Path) -> list[dict[str, Any]]:
    """A run's epochs across both phases (``history.json``); entries that are not
    objects are left out, and a missing or damaged file gives an empty list."""
    try:
        data = read_json(run / "history.json")
    except (OSError, ValueError):
        return []
    return [h for h in data if isinstance(h, dict)] if isinstance(data, list) else []


def phase_accuracy_from_history(history: list[dict[str, Any]]) -> dict[int, float]:
    """Best validation accuracy per phase, from the epochs."""
    out: dict[int, float] = {}
    for h in history:
        acc = _finite(h.get("val_accuracy"))
        try:
            phase = int(h.get("phase", 0))
        except (TypeError, ValueError):
            continue
        if acc is not None and phase > 0:
            out[phase] = max(acc, out.get(phase, acc))
    return out


def _phase_accuracy(status: dict[str, Any], history: list[dict[str, Any]]) -> dict[int, float]:
    # The epochs of a phase say how well it did; status.json's figure for phase 2 is
    # phase 1's when fine-tuning never beat it (the model then keeps phase 1's weights).
    out: dict[int, float] = {}
    stored = status.get("phase_accuracy")
    if isinstance(stored, dict):
        for key, value in stored.items():
            acc = _finite(value)
            with contextlib.suppress(TypeError, ValueError):
                if acc is not None:
                    out[int(key)] = acc
    out.update(phase_accuracy_from_history(history))
    return out


def _image_size(config: dict[str, Any] | None, backbone: str) -> int | None:
    """The side the backbone saw; None when the config is missing or damaged (the
    backbone's default would be a guess shown as a fact)."""
    if config is None:
        return None
    size = config.get("image_size")
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    if size is not None:
        return None
    if backbone in DEFAULT_SIZE_BEFORE_ADR_013:
        return DEFAULT_SIZE_BEFORE_ADR_013[backbone]  # since ADR 013 the size is written
    spec = REGISTRY.get(backbone)
    return spec.default_size if spec else None


def _started(status: dict[str, Any], path: Path) -> tuple[str, float | None]:
    text = _text(status, "started")
    unix = _finite(status.get("started_unix"))
    if unix is None and text:
        with contextlib.suppress(ValueError, OverflowError):
            unix = time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))
    if unix is None:
        # Run folders are named YYYYMMDD-HHMMSS-dataset.
        with contextlib.suppress(ValueError, OverflowError):
            unix = time.mktime(time.strptime(path.name[:15], "%Y%m%d-%H%M%S"))
            text = text or time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))
    return text, unix


def read_record(path: Path) -> RunRecord:
    """Reads one run folder; a damaged file becomes ``reason``, never an exception."""
    problems: list[str] = []
    status = _read_dict(path / "status.json", problems) or {}
    config = _read_dict(path / "config.json", problems)
    notes = _read_dict(path / NOTES_FILE, problems) or {}
    history = read_history(path)
    state = run_state(status) if status else ("unknown" if problems else "incomplete")
    if not status and not problems:
        problems.append("status.json is missing")
    elif status and state == "unknown":
        problems.append("status.json gives a state tlgui does not know")
    if state == "failed" and _text(status, "error"):
        problems.insert(0, _text(status, "error"))
    backbone = _text(status, "backbone") or _text(config or {}, "backbone")
    duration = _finite(status.get("duration_s"))
    if duration is None and state not in ("running",) and history:
        seconds = [_finite(h.get("seconds")) for h in history]
        duration = sum(s for s in seconds if s is not None) or None
    started, started_unix = _started(status, path)
    phases = _phase_accuracy(status, history)
    accs = [a for a in (_finite(h.get("val_accuracy")) for h in history) if a is not None]
    dataset = status.get("dataset")
    return RunRecord(
        path=path,
        label=_text(notes, "name")[:MAX_NAME],
        note=_text(notes, "note")[:MAX_NOTE],
        state=state,
        dataset=Path(dataset) if isinstance(dataset, str) and dataset else None,
        backbone=backbone,
        image_size=_image_size(config, backbone),
        started=started,
        started_unix=started_unix,
        duration_s=duration,
        phase_accuracy=phases,
        best_val_accuracy=max(accs) if accs else (max(phases.values()) if phases else None),
        epochs=len(history),
        has_model=(path / MODEL_FILE).is_file(),
        has_evaluation=(path / EVALUATION_FILE).is_file(),
        reason="; ".join(problems),
    )


def same_folder(a: Path, b: Path) -> bool:
    """True when two paths name one folder (links and relative parts resolved)."""
    try:
        return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())
    except (OSError, RuntimeError):
        return False


def list_run_records(root: Path | None = None, dataset: Path | None = None) -> list[RunRecord]:
    """Every run under ``root`` (default: the user's runs folder).

    Runs of ``dataset`` (the same folder once resolved) come first, then the others,
    each group newest first. Links, hidden folders and folders without a run's files
    are skipped; an unreadable run is listed with its ``reason``.

    Args:
        root: the runs folder.
        dataset: the dataset whose runs come first, or None.

    Returns:
        The records, never raising for a damaged folder.
    """
    root = root or runs_dir()
    try:
        entries = [p for p in root.iterdir()
                   if not p.name.startswith(".") and not p.is_symlink() and looks_like_run(p)]
    except OSError as exc:
        log.info("cannot list the runs in %s: %s", root, exc)
        return []
    records = []
    for path in entries:
        try:
            records.append(read_record(path))
        except OSError as exc:  # e.g. permissions changed between listing and reading
            records.append(RunRecord(path=path, reason=f"not readable ({exc})"))

    def of_dataset(r: RunRecord) -> bool:
        return dataset is not None and r.dataset is not None and same_folder(r.dataset, dataset)

    # Within one second, the later folder (name suffix -1, -2...) first; then newest first.
    records.sort(key=lambda r: r.path.name, reverse=True)
    records.sort(key=lambda r: (not of_dataset(r), -(r.started_unix or 0.0)))
    return records


def resolve_run(ref: str | Path, root: Path | None = None) -> Path:
    """The run folder ``ref`` names: a folder path, or a folder name under the runs root.

    Raises:
        RunError: no run folder by that name or path.
    """
    root = root or runs_dir()
    candidates = [Path(ref)]
    if not Path(ref).is_absolute() and len(Path(ref).parts) == 1:
        candidates.append(root / str(ref))
    for path in candidates:
        if looks_like_run(path):
            return path
    if any(p.is_dir() for p in candidates):
        raise RunError(f"{ref} is not a run folder (it has no status.json or config.json).")
    raise RunError(f"No run '{ref}': give a run folder or a folder name in {root}.")


def set_label(run: Path, name: str, note: str = "") -> RunRecord:
    """Names and annotates a run (``notes.json`` in its folder, written atomically).

    Args:
        run: the run folder.
        name: its new name; empty goes back to the folder name. One line.
        note: free text.

    Returns:
        The run as listed now.

    Raises:
        RunError: ``run`` is not a run folder, the name is too long, or the file
            cannot be written.
    """
    if not looks_like_run(run):
        raise RunError(f"{run} is not a run folder; its name cannot be changed.")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise RunError(f"The name for {run.name} is longer than {MAX_NAME} characters.")
    if len(note) > MAX_NOTE:
        raise RunError(f"The note for {run.name} is longer than {MAX_NOTE} characters.")
    try:
        atomic_write_json(run / NOTES_FILE, {"name": name, "note": note.strip()})
    except OSError as exc:
        raise RunError(f"Cannot save the name of {run}: {exc.strerror or exc}") from exc
    return read_record(run)


def delete_run(run: Path, root: Path | None = None) -> None:
    """Deletes one run folder, and nothing else.

    Only a real folder (not a link) directly inside the runs root that holds a run's
    ``status.json`` or ``config.json`` is deleted; links inside it are removed, never
    followed. The folder is first renamed to a hidden name, so a half-deleted run is
    never listed.

    Args:
        run: the run folder.
        root: the runs root (default: the user's runs folder).

    Raises:
        RunError: ``run`` is not such a folder, is still training, or cannot be deleted.
    """
    root = root or runs_dir()
    if run.is_symlink():
        raise RunError(f"{run} is a link, not a run folder: it is not deleted.")
    try:
        real, real_root = run.resolve(strict=True), root.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise RunError(f"The run folder {run} does not exist.") from exc
    if real == real_root or real.parent != real_root:
        raise RunError(f"{run} is not a run folder inside {root}: it is not deleted.")
    if not looks_like_run(real):
        raise RunError(f"{run} does not look like a run folder (no status.json or "
                       "config.json): it is not deleted.")
    if read_record(real).state == "running":
        raise RunError(f"The run {run.name} is still training: cancel it before deleting it.")
    doomed = real_root / f"{DELETING_PREFIX}{uuid.uuid4().hex[:8]}-{real.name}"
    try:
        os.rename(real, doomed)
    except OSError as exc:
        raise RunError(f"Cannot delete {run}: {exc.strerror or exc}") from exc
    for path in [doomed, *(p for p in real_root.glob(f"{DELETING_PREFIX}*") if p != doomed)]:
        try:
            # rmtree removes the links inside without following them.
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
        except OSError as exc:
            if path == doomed:
                raise RunError(f"The run {run.name} is no longer listed, but some of its files "
                               f"could not be deleted ({exc}); they are in {doomed}.") from exc
            log.warning("cannot remove %s: %s", path, exc)


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``; ``–`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"
