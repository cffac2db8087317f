"""Run folders: one per training run, in the user data folder, every file written atomically.

A run folder holds ``config.json``, ``classes.json``, ``status.json`` (``running``,
``complete``, ``cancelled`` or ``failed``), ``history.json`` and ``history.csv``, and
``model.keras`` (the best weights so far). A run killed mid-training keeps
``status.json`` at ``running`` with a dead process id, and is listed as incomplete.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlgui.core.atomic import atomic_write_json, atomic_write_text
from tlgui.core.config import TrainConfig, check_train_config
from tlgui.core.destinations import check_folder_output
from tlgui.core.entries import EntryProblem, open_regular, printable
from tlgui.core.errors import ConfigError, WriteError
from tlgui.core.json_bounds import loads_bounded
from tlgui.core.outcomes import TrainSummary
from tlgui.core.paths import runs_dir
from tlgui.core.processes import pid_alive

MODEL_FILE = "model.keras"
LAYERS_FILE = "layers.json"
EVALUATION_FILE = "evaluation.json"
TEST_EVALUATION_FILE = "test_evaluation.json"  # test/, measured once after training
# Run folders are tlgui's own, but a damaged or planted JSON file must not cost gigabytes.
MAX_JSON_BYTES = 16 * 2**20
# The states training writes to status.json, and "incomplete" (killed while running).
RUN_STATES = ("running", "complete", "cancelled", "failed", "incomplete")
HISTORY_FIELDS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy",
                  "learning_rate", "seconds")



@dataclass(frozen=True)
class RunInfo:
    """A run as listed: folder, state and headline figures."""

    path: Path
    state: str
    dataset: str
    backbone: str
    started: str
    best_val_accuracy: float | None
    epochs: int

    @property
    def model_path(self) -> Path:
        """The run's model file."""
        return self.path / MODEL_FILE


class RunFolder:
    """Writes one run's files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, dataset_root: Path, root: Path | None = None) -> RunFolder:
        """A new, uniquely named run folder under ``root`` (default: the user data folder).

        Raises:
            UnsafeDestination: ``root`` lies inside the dataset (tlgui never writes
                there) or is a file.
            WriteError: ``root`` cannot be created or written.
        """
        root = root or runs_dir()
        check_folder_output(root, inputs=[dataset_root], may_hold_inputs=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", dataset_root.name).strip("-")[:40] or "data"
        for n in range(1000):
            path = root / (f"{stamp}-{slug}" + (f"-{n}" if n else ""))
            try:
                path.mkdir(parents=True)
                return cls(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise WriteError(root, exc, "the run folder in") from exc
        raise WriteError(root, OSError(errno.EEXIST, "1,000 runs started this second"),
                         "a new run folder in")

    @property
    def model_path(self) -> Path:
        """Where the best model is saved."""
        return self.path / MODEL_FILE

    def write_start(self, config: TrainConfig, class_names: tuple[str, ...],
                    dataset_root: Path) -> None:
        """Writes the config, class names and a ``running`` status."""
        atomic_write_json(self.path / "config.json", config.to_dict())
        atomic_write_json(self.path / "classes.json", list(class_names))
        # Kept exactly (JSON escapes odd bytes), so an export can tell the dataset apart.
        self.write_status("running", dataset=os.path.abspath(dataset_root),
                          backbone=config.backbone)

    def write_status(self, state: str, **extra: Any) -> None:
        """Updates ``status.json``, keeping earlier keys."""
        status = self.read_status()
        status.update(extra)
        status.update(state=state, pid=os.getpid(), updated=time.strftime("%Y-%m-%d %H:%M:%S"))
        status.setdefault("started", status["updated"])
        status.setdefault("started_unix", time.time())
        if state != "running":
            status["duration_s"] = round(time.time() - float(status["started_unix"]), 1)
        atomic_write_json(self.path / "status.json", status)

    def read_status(self) -> dict[str, Any]:
        """The current status, or an empty dict."""
        try:
            data = read_json(self.path / "status.json")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write_layers(self, flags: tuple[tuple[tuple[str, ...], bool], ...]) -> None:
        """Writes the layers' own trainable flags (the ticks the run was trained with)."""
        atomic_write_json(self.path / LAYERS_FILE, [[list(p), bool(f)] for p, f in flags])

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """Writes the history across both phases as JSON and CSV."""
        atomic_write_json(self.path / "history.json", history)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(self.path / "history.csv", buf.getvalue())


def run_state(status: dict[str, Any]) -> str:
    """The state a ``status.json`` means: a ``running`` run whose process is gone (or
    whose status is missing) is ``incomplete``; a state that is not one of
    ``RUN_STATES`` (another type, another word) is ``unknown``."""
    state = status.get("state", "incomplete")
    if not isinstance(state, str) or state not in RUN_STATES:
        return "unknown"  # a damaged or foreign status.json: never shown as it is
    if state == "running":
        try:
            pid = int(status.get("pid", 0) or 0)
        except (TypeError, ValueError, OverflowError):  # OverflowError: "pid": 1e999
            pid = 0
        if pid <= 0 or not pid_alive(pid):
            state = "incomplete"
    return state


def read_run(path: Path) -> RunInfo:
    """Reads a run folder's summary; a ``running`` run whose process is gone is ``incomplete``."""
    status = RunFolder.__new__(RunFolder)
    status.path = path
    data = status.read_status()
    state = run_state(data)
    try:
        history = read_json(path / "history.json")
    except (OSError, ValueError):
        history = []
    if not isinstance(history, list):
        history = []
    accs: list[float] = [h["val_accuracy"] for h in history if isinstance(h, dict)
                         and isinstance(h.get("val_accuracy"), (int, float))]
    return RunInfo(
        path=path,
        state=state,
        dataset=printable(str(data.get("dataset", "?"))),
        backbone=str(data.get("backbone", "?")),
        started=str(data.get("started", "?")),
        best_val_accuracy=max(accs) if accs else None,
        epochs=len(history),
    )


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run folder, newest first."""
    root = root or runs_dir()
    try:
        entries = sorted(root.iterdir(), reverse=True)
    except OSError:
        return []
    return [read_run(p) for p in entries if p.is_dir() and not p.is_symlink()]


def load_class_names(run_path: Path) -> tuple[str, ...]:
    """The class names of a run."""
    return tuple(read_json(run_path / "classes.json"))


def read_json(path: Path) -> Any:
    """A run folder's JSON file, read with a size bound.

    Raises:
        OSError: missing or unreadable.
        ValueError: too large, not JSON, or nested more than ``MAX_DEPTH`` levels.
    """
    try:
        fh = open_regular(path)  # a planted pipe would block the list of runs
    except EntryProblem as exc:
        raise OSError(errno.EINVAL, f"{path.name}: {exc.reason}") from exc
    with fh:
        data = fh.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_JSON_BYTES // 2**20} MB")
    # Bounded in depth too: "[" * 100000 raised RecursionError through every caller.
    return loads_bounded(data)


def load_config(run_path: Path) -> TrainConfig:
    """The config of a run."""
    data = read_json(run_path / "config.json")
    if not isinstance(data, dict):
        raise ValueError("config.json does not hold an object")
    config = TrainConfig.from_dict(data)
    try:
        # An edited file ("epochs": "x") would otherwise reach the window's spin boxes.
        check_train_config(config)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
    if config.image_size is None:
        from tlgui.core.backbones import DEFAULT_SIZE_BEFORE_ADR_013

        # Runs write their size since ADR 013; one without it trained at the old default.
        old = DEFAULT_SIZE_BEFORE_ADR_013.get(config.backbone)
        config = config.replace(image_size=old) if old else config
    return config


def load_layers(run_path: Path) -> tuple[tuple[tuple[str, ...], bool], ...]:
    """The layer ticks a run was trained with; empty when absent or unreadable."""
    try:
        data = read_json(run_path / LAYERS_FILE)
        return tuple((tuple(str(n) for n in path), bool(flag)) for path, flag in data)
    except (OSError, ValueError, TypeError):
        return ()


def run_dataset(run_path: Path) -> Path | None:
    """The dataset folder a run trained on, as its status says (None when unknown)."""
    status = RunFolder.__new__(RunFolder)
    status.path = run_path
    root = status.read_status().get("dataset")
    return Path(root) if isinstance(root, str) and root and root != "?" else None


def kept_epoch(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch whose weights a run's model holds: the best validation accuracy, ties to
    the lower validation loss (phase 2 only replaces phase 1's best when it beats it)."""
    def score(h: dict[str, Any]) -> tuple[float, float]:
        acc, loss = h.get("val_accuracy"), h.get("val_loss")
        if not isinstance(acc, (int, float)) or acc != acc:  # NaN: no validation images
            loss = h.get("loss")
            return (0.0, -float(loss) if isinstance(loss, (int, float)) else 0.0)
        return (float(acc), -float(loss) if isinstance(loss, (int, float)) and loss == loss
                else 0.0)

    rows = [h for h in history if isinstance(h, dict) and "epoch" in h]
    return max(rows, key=score) if rows else None


def load_summary(run_path: Path) -> TrainSummary:
    """What a finished (or stopped) run produced, read back from its folder."""
    status = RunFolder.__new__(RunFolder)
    status.path = run_path
    data = status.read_status()
    try:
        history = read_json(run_path / "history.json")
        if not isinstance(history, list):
            history = []
    except (OSError, ValueError):
        history = []
    history = [h for h in history if isinstance(h, dict)]

    def per_phase(key: str) -> dict[int, float]:
        raw = data.get(key)
        if not isinstance(raw, dict):
            return {}
        out = {}
        for k, v in raw.items():
            try:
                out[int(k)] = float(v)
            except (TypeError, ValueError):
                continue
        return out

    accuracy = per_phase("phase_accuracy")
    if not accuracy:
        for h in history:
            phase, acc = h.get("phase"), h.get("val_accuracy")
            if isinstance(phase, int) and isinstance(acc, (int, float)):
                accuracy[phase] = max(accuracy.get(phase, 0.0), float(acc))
    return TrainSummary(history=history, run=run_path, phase_seconds=per_phase("phase_seconds"),
                        phase_accuracy=accuracy, cancelled=data.get("state") == "cancelled",
                        model_saved=(run_path / MODEL_FILE).is_file())
