"""The work the window hands to workers: each function calls the engine from a worker thread.

Every function takes the ``EngineHost`` first and ``(report, cancel)`` last (bound with
``functools.partial``); it sends one call to the engine process and turns the data that
comes back into core objects. Nothing here imports Keras: the engine does the work.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlgui.core.config import PhaseConfig, SplitConfig, TrainConfig
from tlgui.core.errors import Cancelled
from tlgui.core.layer_tree import Flags
from tlgui.core.outcomes import ModelInfo, TrainSummary
from tlgui.core.paths import cache_dir, data_dir
from tlgui.core.prediction import Prediction
from tlgui.engine import codec

if TYPE_CHECKING:
    from tlgui.core.audit_findings import AuditSummary, Nearest
    from tlgui.core.dataset import Dataset
    from tlgui.core.heatmap import HeatMap
    from tlgui.core.metrics import Evaluation
    from tlgui.gui.engine_host import EngineHost

Report = Callable[[object], None]
MODEL_SUFFIXES = frozenset({".keras", ".tflite", ".onnx", ".h5"})


def _cache() -> dict[str, Any]:
    """The pixel cache's folder and limit, as the window sees them: the engine may have
    started with other folders (in tests one engine serves many windows)."""
    from tlgui.core.cache_control import effective_limit

    return {"cache_dir": str(cache_dir()),
            "cache_limit": effective_limit(cache_dir() / "pixels")}


# -- dataset ------------------------------------------------------------------------------
def scan_dataset(engine: EngineHost, path: Path, split: SplitConfig, report: Report,
                 cancel: threading.Event) -> tuple[Dataset, str]:
    """Scans a dataset folder in the engine; returns (dataset, its token there)."""
    data = engine.call("scan", {"root": str(path), "split": dataclasses.asdict(split)},
                       report, cancel)
    return codec.dataset_from_data(data)


def fetch_sample(engine: EngineHost, name: str, dest: Path, report: Report,
                 cancel: threading.Event) -> Path:
    """Writes a sample data set as class folders and returns the folder."""
    return Path(engine.call("fetch_sample", {"name": name, "dest": str(dest)}, report, cancel))


# -- model ----------------------------------------------------------------------------------
def build_model(engine: EngineHost, config: TrainConfig, class_names: tuple[str, ...],
                flags: Flags | None, report: Report, cancel: threading.Event) -> ModelInfo:
    """Builds the classifier (with the user's ticks when given) and compiles it."""
    params: dict[str, Any] = {"config": config.to_dict(), "class_names": list(class_names)}
    if flags:
        params["flags"] = codec.flags_to_data(flags)
    return codec.model_info_from_data(engine.call("build", params, report, cancel))


def recompile(engine: EngineHost, flags: Flags, phase: PhaseConfig, label_smoothing: float,
              report: Report, cancel: threading.Event) -> Flags:
    """Compiles the engine's model with these ticks; returns the flags it compiled with."""
    data = engine.call("recompile", {"flags": codec.flags_to_data(flags),
                                     "phase": dataclasses.asdict(phase),
                                     "label_smoothing": label_smoothing}, report, cancel)
    return codec.flags_from_data(data)


def open_run(engine: EngineHost, run: Path, report: Report,
             cancel: threading.Event) -> ModelInfo:
    """Loads a run's trained model (and its ticks) into the engine."""
    return codec.model_info_from_data(engine.call("open_run", {"run": str(run)}, report, cancel))


class TrainingCancelled(Cancelled):
    """Training stopped by the user; ``result`` holds what it left (or None)."""

    def __init__(self, result: TrainSummary | None, model: ModelInfo | None) -> None:
        super().__init__("Training cancelled.")
        self.result = result
        self.model = model


def train(engine: EngineHost, dataset: Dataset, token: str, config: TrainConfig,
          flags: Flags, compiled_flags: Flags, report: Report,
          cancel: threading.Event, corrections: dict[str, Any] | None = None,
          devices: str = "1") -> tuple[TrainSummary, ModelInfo]:
    """Runs both phases in the engine with the user's ticks (and label corrections).

    Returns:
        (what the run produced, the trained model's description).

    Raises:
        TrainingCancelled: the user cancelled; it carries the partial result.
    """
    params = {"config": config.to_dict(),
              "dataset": codec.dataset_ref(dataset, token, config.split, corrections),
              "flags": codec.flags_to_data(flags),
              "compiled_flags": codec.flags_to_data(compiled_flags),
              "data_dir": str(data_dir()), **_cache(), "devices": devices}
    try:
        data = engine.call("train", params, report, cancel)
    except Cancelled as exc:
        partial = getattr(exc, "partial", None)
        if isinstance(partial, dict):
            raise TrainingCancelled(codec.summary_from_data(partial),
                                    codec.model_info_from_data(partial["model"])) from exc
        raise TrainingCancelled(None, None) from exc
    return codec.summary_from_data(data), codec.model_info_from_data(data["model"])


def evaluate(engine: EngineHost, dataset: Dataset, token: str, split: SplitConfig,
             run: Path | None, report: Report, cancel: threading.Event,
             corrections: dict[str, Any] | None = None, mirror: bool = False,
             part: str | None = None) -> Evaluation:
    """Classifies the validation images (``part``: ``test``) with the engine's model (saved
    into ``run``); ``mirror`` averages each image with its mirror (test-time augmentation)."""
    params = {"dataset": codec.dataset_ref(dataset, token, split, corrections),
              "run": str(run) if run else None, "mirror": mirror, "split": part, **_cache()}
    from tlgui.core.metrics import evaluation_from_data

    return evaluation_from_data(engine.call("evaluate", params, report, cancel))


def export(engine: EngineHost, run: Path | None, fmt: str, out: Path, report: Report,
           cancel: threading.Event, *, overwrite: bool = False,
           protected: Sequence[Path] = (), mirror: bool = False) -> list[Path]:
    """Exports the engine's model (preprocessing and class names included); existing
    files are replaced only with ``overwrite``, and never inside ``protected`` folders;
    ``mirror`` puts test-time augmentation inside the exported model."""
    params = {"format": fmt, "out": str(out), "run": str(run) if run else None,
              "overwrite": overwrite, "protected": [str(p) for p in protected],
              "mirror": mirror}
    return [Path(p) for p in engine.call("export", params, report, cancel)]


# -- prediction -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PredictorInfo:
    """A model loaded for prediction in the engine."""

    id: str
    path: Path
    class_names: tuple[str, ...]
    image_size: int
    mirror: bool = False


def load_predictor(engine: EngineHost, path: Path, report: Report,
                   cancel: threading.Event, mirror: bool = False) -> PredictorInfo:
    """Loads an exported model (or a run's ``model.keras``) for prediction; ``mirror``
    averages each image with its mirror (test-time augmentation)."""
    data = engine.call("load_predictor", {"path": str(path), "mirror": mirror}, report,
                       cancel)
    return PredictorInfo(str(data["id"]), Path(data["path"]),
                         tuple(str(n) for n in data["class_names"]), int(data["image_size"]),
                         data.get("mirror") is True)


def predict(engine: EngineHost, predictor: PredictorInfo, paths: Sequence[Path],
            report: Report, cancel: threading.Event) -> list[Prediction]:
    """Classifies images and folders of images.

    Returns:
        One ``Prediction`` per file found; empty when the folders hold no image (the
        window says so on the folder's card: a user's mistake, not a failure).
    """
    data = engine.call("predict", {"id": predictor.id, "path": str(predictor.path),
                                   "mirror": predictor.mirror,
                                   "paths": [str(p) for p in paths], "top_k": 3},
                       report, cancel)
    return [codec.prediction_from_data(item) for item in data]


# -- label review ------------------------------------------------------------------------
def audit(engine: EngineHost, dataset_ref: dict[str, Any], config: TrainConfig,
          report: Report, cancel: threading.Event) -> AuditSummary:
    """Audits the labels of a dataset (a ``codec.dataset_ref``, corrections included)."""
    data = engine.call("audit", {"dataset": dataset_ref, "config": config.to_dict(),
                                 **_cache()}, report, cancel)
    return codec.audit_summary_from_data(data)


def neighbours(engine: EngineHost, dataset_ref: dict[str, Any], config: TrainConfig,
               queries: Sequence[tuple[Path, Sequence[str]]], report: Report,
               cancel: threading.Event) -> list[tuple[Nearest, ...]]:
    """Per query image, the dataset's images of each named class that look most like it."""
    data = engine.call("neighbours", {
        "dataset": dataset_ref, "config": config.to_dict(), **_cache(),
        "queries": [[str(p), list(classes)] for p, classes in queries]}, report, cancel)
    return codec.nearest_from_data(data)


def explain(engine: EngineHost, model: dict[str, str], paths: Sequence[Path], report: Report,
            cancel: threading.Event) -> list[HeatMap]:
    """Heat maps of what a model looked at: ``model`` is ``{"run": folder}`` (the
    session's model) or ``{"predictor": id, "path": file}``."""
    data = engine.call("explain", {"model": model, "paths": [str(p) for p in paths]},
                       report, cancel)
    return [codec.heatmap_from_data(item) for item in data]


def is_model_path(path: Path) -> bool:
    """True for an exported model file or a SavedModel / run folder."""
    if path.is_file():
        return path.suffix.lower() in MODEL_SUFFIXES
    return (path / "saved_model.pb").is_file() or (path / "model.keras").is_file()
