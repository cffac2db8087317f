"""The work the window hands to workers: each function runs off the GUI thread.

Every function here takes ``(report, cancel)`` last (bound with ``functools.partial``)
and imports Keras-dependent core modules inside, so that importing this module is cheap
and never imports TensorFlow.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlgui.core.config import PhaseConfig, SplitConfig, TrainConfig
from tlgui.core.errors import Cancelled, ConfigError
from tlgui.core.events import StageProgress

if TYPE_CHECKING:
    from tlgui.core.dataset import Dataset
    from tlgui.core.layer_tree import LayerNode
    from tlgui.core.model import ClassifierModel
    from tlgui.core.training import TrainResult

log = logging.getLogger(__name__)
Report = Callable[[object], None]
MODEL_SUFFIXES = frozenset({".keras", ".tflite", ".onnx", ".h5"})


# -- start-up -------------------------------------------------------------------------
@dataclass(frozen=True)
class ComputeInfo:
    """What training will run on."""

    device: str
    backend: str
    keras_version: str

    def status_text(self) -> str:
        """One line for the status bar."""
        return f"Trains on {self.device} · Keras {self.keras_version}, {self.backend} backend"


def _nvidia_memory_gb() -> float | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                              "-i", "0"], capture_output=True, text=True, timeout=5, check=True)
        return float(out.stdout.strip().splitlines()[0]) / 1024
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def describe_device(backend: str) -> str:
    """``GPU <name> (<memory>)`` for the first GPU the backend sees, else ``CPU``."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return "CPU"
            details = tf.config.experimental.get_device_details(gpus[0])
            name = details.get("device_name") or gpus[0].name
            mem = _nvidia_memory_gb()
            return f"GPU {name}" + (f" ({mem:.0f} GB)" if mem else "")
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform != "gpu":
                return "CPU"
            limit = (dev.memory_stats() or {}).get("bytes_limit")
            return f"GPU {dev.device_kind}" + (f" ({limit / 2**30:.0f} GB)" if limit else "")
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return "CPU"
            props = torch.cuda.get_device_properties(0)
            return f"GPU {props.name} ({props.total_memory / 2**30:.0f} GB)"
    except Exception:  # a broken driver must not stop the app; training falls back to CPU
        log.warning("cannot query the GPU", exc_info=True)
    return "CPU"


def import_keras(report: Report, cancel: threading.Event) -> ComputeInfo:
    """Imports Keras (and its backend): the slow part of start-up, done in the background."""
    import keras

    backend = keras.backend.backend()
    return ComputeInfo(describe_device(backend), backend, keras.__version__)


# -- dataset ------------------------------------------------------------------------------
def scan_dataset(path: Path, split: SplitConfig, report: Report,
                 cancel: threading.Event) -> Dataset:
    """Scans a dataset folder."""
    from tlgui.core.dataset import scan

    return scan(path, split, report, cancel)


def fetch_sample(name: str, dest: Path, report: Report, cancel: threading.Event) -> Path:
    """Writes a sample data set as class folders and returns the folder."""
    from tlgui.core.tfds_fetch import fetch_dataset

    return Path(fetch_dataset(name, dest, report=report, cancel=cancel))


# -- model ----------------------------------------------------------------------------------
@dataclass
class BuiltModel:
    """A classifier built for the window, with its layer tree and the config it used."""

    cm: ClassifierModel
    tree: LayerNode
    config: TrainConfig


def build_model(config: TrainConfig, class_names: tuple[str, ...], report: Report,
                cancel: threading.Event) -> BuiltModel:
    """Builds the classifier, sets the default fine-tuning start and compiles it."""
    from tlgui.core.layer_tree import build_layer_tree
    from tlgui.core.model import ClassifierModel

    report(StageProgress("build", 0, 0, f"Building {config.backbone}…"))
    cm = ClassifierModel.build(config, class_names)
    if cancel.is_set():
        raise Cancelled("Building the model was cancelled.")
    cm.set_fine_tune_at(config.fine_tune_at)
    cm.compile(config.phase2, config.label_smoothing)
    return BuiltModel(cm, build_layer_tree(cm.model), config)


def recompile(cm: ClassifierModel, phase: PhaseConfig, label_smoothing: float,
              report: Report, cancel: threading.Event) -> None:
    """Compiles the model with its current trainable flags."""
    cm.compile(phase, label_smoothing)


def restore_flags(cm: ClassifierModel, flags: Sequence[tuple[tuple[str, ...], bool]]) -> None:
    """Puts back trainable flags saved with ``cm.trainable_flags()`` (parents come first)."""
    for path, flag in flags:
        cm.layer_at(path).trainable = flag


class TrainingCancelled(Cancelled):
    """Training stopped by the user; ``result`` holds the best finished epoch."""

    def __init__(self, result: TrainResult) -> None:
        super().__init__("Training cancelled; the best finished epoch is kept.")
        self.result = result


def train(dataset: Dataset, config: TrainConfig, cm: ClassifierModel, report: Report,
          cancel: threading.Event) -> TrainResult:
    """Runs both phases on the window's model, honouring the user's trainable edits.

    The model's flags are put back afterwards (training freezes the backbone for phase
    1), so the layer tree shows what the user chose, compiled and ready to train again.
    """
    from tlgui.core.training import run_training

    flags = cm.trainable_flags()
    try:
        result = run_training(dataset, config, report, cancel, model=cm,
                              use_model_trainable=True)
    finally:
        restore_flags(cm, flags)
        cm.compile(config.phase2, config.label_smoothing)
    if result.cancelled:
        raise TrainingCancelled(result)
    return result


def evaluate(cm: ClassifierModel, dataset: Dataset, report: Report,
             cancel: threading.Event) -> Any:
    """Classifies the validation images and returns an ``Evaluation``."""
    from tlgui.core.evaluate import evaluate_model

    split = "validation" if dataset.validation else "test"
    return evaluate_model(cm.model, cm.image_size, dataset, split, report=report, cancel=cancel)


def export(cm: ClassifierModel, fmt: str, out: Path, report: Report,
           cancel: threading.Event) -> Any:
    """Exports the model (preprocessing and class names included)."""
    from tlgui.core.export import export_model

    return export_model(cm.model, cm.class_names, cm.image_size, fmt, out, report, cancel)


# -- prediction -------------------------------------------------------------------------
def load_predictor(path: Path, report: Report, cancel: threading.Event) -> Any:
    """Loads an exported model (or a run's ``model.keras``) for prediction."""
    from tlgui.core.predict import Predictor

    report(StageProgress("load", 0, 0, f"Loading {path.name}…"))
    return Predictor.load(path)


def predict(predictor: Any, paths: Sequence[Path], report: Report,
            cancel: threading.Event) -> list[Any]:
    """Classifies images and folders of images; returns one ``Prediction`` per file."""
    from tlgui.core.predict import collect_images

    files = collect_images(paths)
    if not files:
        raise ConfigError("None of the dropped items is an image or a folder with images.")
    return list(predictor.predict_paths(files, 3, report, cancel))


def is_model_path(path: Path) -> bool:
    """True for an exported model file or a SavedModel / run folder."""
    if path.is_file():
        return path.suffix.lower() in MODEL_SUFFIXES
    return (path / "saved_model.pb").is_file() or (path / "model.keras").is_file()
