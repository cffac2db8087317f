"""Core objects as plain JSON data and back, for the pipe between window and engine.

Each ``*_to_data`` has a ``*_from_data`` that accepts only what it expects: event and
error kinds come from fixed lists of core classes, so nothing the other side sends is
ever looked up or run by name beyond them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from tlgui.core import errors, events
from tlgui.core.audit_findings import AuditSummary, Finding, Nearest
from tlgui.core.config import SplitConfig, TrainConfig
from tlgui.core.dataset import Dataset, Problem, Sample
from tlgui.core.heatmap import HeatMap
from tlgui.core.layer_tree import from_dict as tree_from_dict
from tlgui.core.layer_tree import to_dict as tree_to_dict
from tlgui.core.outcomes import ModelInfo, TrainSummary
from tlgui.core.prediction import Prediction

_PRIMITIVES = (str, int, float, bool, type(None))
EVENT_KINDS: dict[str, type[events.Event]] = {
    cls.__name__: cls for cls in (
        events.StageProgress, events.PhaseStarted, events.BatchProgress, events.EpochEnded,
        events.PhaseEnded, events.Notice, events.RunStarted)
}


class EngineError(errors.TlguiError):
    """Something unexpected went wrong in the engine; its log has the details."""


class EngineCrashed(errors.TlguiError):
    """The engine process ended in the middle of a job."""


def _error_kinds() -> dict[str, type[errors.TlguiError]]:
    kinds: dict[str, type[errors.TlguiError]] = {}
    for value in (*vars(errors).values(), EngineError, EngineCrashed):
        if isinstance(value, type) and issubclass(value, errors.TlguiError):
            kinds[value.__name__] = value
    return kinds


# -- events and errors ----------------------------------------------------------------
def event_to_data(event: events.Event) -> dict[str, Any]:
    """A core event as data."""
    return {"kind": type(event).__name__, **dataclasses.asdict(event)}


def event_from_data(data: Any) -> events.Event | None:
    """The core event, or None for a kind or shape this side does not know."""
    if not isinstance(data, dict):
        return None
    cls = EVENT_KINDS.get(str(data.get("kind")))
    if cls is None:
        return None
    values = {}
    for f in dataclasses.fields(cls):
        value = data.get(f.name)
        if f.name not in data or not isinstance(value, _PRIMITIVES):
            return None
        values[f.name] = value
    return cls(**values)


def error_to_data(exc: BaseException, log_file: str | None = None) -> dict[str, Any]:
    """An exception as data: a TlguiError keeps its kind and message, others are named."""
    if isinstance(exc, errors.TlguiError):
        out: dict[str, Any] = {"kind": type(exc).__name__, "message": str(exc)}
        path = getattr(exc, "path", None)
        if path is not None:
            out["path"] = str(path)
        return out
    where = f" Details are in the log file {log_file}." if log_file else ""
    return {"kind": "EngineError",
            "message": f"Something went wrong: {type(exc).__name__}: {exc}.{where}"}


def error_from_data(data: Any) -> errors.TlguiError:
    """The exception to raise in the window for an engine error."""
    if not isinstance(data, dict):
        return EngineError("The engine sent an error it could not describe.")
    cls = _error_kinds().get(str(data.get("kind")), EngineError)
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(data.get("message", "")))
    if isinstance(data.get("path"), str):
        exc.path = Path(data["path"])  # type: ignore[attr-defined]
    return exc


# -- datasets -------------------------------------------------------------------------
def _samples(items: tuple[Sample, ...]) -> list[list[Any]]:
    return [[str(s.path), s.label, s.size, s.mtime_ns] for s in items]


def _read_samples(items: Any) -> tuple[Sample, ...]:
    return tuple(Sample(Path(p), int(label), int(size), int(mtime))
                 for p, label, size, mtime in items)


def problems_to_data(problems: tuple[Problem, ...] | list[Problem]) -> list[list[str]]:
    """Skipped files as [path, reason] pairs."""
    return [[str(p.path), p.reason] for p in problems]


def problems_from_data(items: Any) -> tuple[Problem, ...]:
    """Skipped files from ``problems_to_data``."""
    return tuple(Problem(Path(str(p)), str(r)) for p, r in items)


def dataset_to_data(ds: Dataset, token: str = "") -> dict[str, Any]:
    """A scanned dataset as data; ``token`` names it in the engine that holds it."""
    return {"token": token, "root": str(ds.root), "layout": ds.layout,
            "class_names": list(ds.class_names), "train": _samples(ds.train),
            "validation": _samples(ds.validation), "test": _samples(ds.test),
            "problems": problems_to_data(ds.problems), "warnings": list(ds.warnings),
            "conflicts": [[str(p) for p in group] for group in ds.conflicts],
            "validation_held_back": ds.validation_held_back}


def dataset_from_data(data: dict[str, Any]) -> tuple[Dataset, str]:
    """(the dataset, its token in the engine) from ``dataset_to_data``."""
    ds = Dataset(
        root=Path(data["root"]), layout=data["layout"],
        class_names=tuple(str(c) for c in data["class_names"]),
        train=_read_samples(data["train"]), validation=_read_samples(data["validation"]),
        test=_read_samples(data["test"]), problems=problems_from_data(data["problems"]),
        warnings=tuple(str(w) for w in data["warnings"]),
        conflicts=tuple(tuple(Path(p) for p in group) for group in data["conflicts"]),
        validation_held_back=bool(data.get("validation_held_back", False)))
    return ds, str(data.get("token", ""))


def dataset_ref(ds: Dataset, token: str, split: SplitConfig,
                corrections: dict[str, Any] | None = None) -> dict[str, Any]:
    """How a call names a dataset: the engine's token, or the folder to scan again.

    Args:
        ds: the dataset (its root).
        token: its name in the engine.
        split: how to split it when the engine scans it again.
        corrections: the user's correction list (``Corrections.to_dict()``); the engine
            applies it to the scanned dataset, so training and evaluation use the
            corrected labels while the folders stay as they are.
    """
    ref = {"token": token, "root": str(ds.root), "split": dataclasses.asdict(split)}
    if corrections:
        ref["corrections"] = corrections
    return ref


# -- models and runs ----------------------------------------------------------------------
def model_info_to_data(info: ModelInfo) -> dict[str, Any]:
    """A model description as data."""
    return {"class_names": list(info.class_names), "image_size": info.image_size,
            "backbone": info.backbone, "config": info.config.to_dict(),
            "tree": tree_to_dict(info.tree), "compiled_flags": flags_to_data(info.compiled_flags),
            "trained": info.trained, "run": str(info.run) if info.run else None}


def model_info_from_data(data: dict[str, Any]) -> ModelInfo:
    """A model description from ``model_info_to_data``."""
    return ModelInfo(
        class_names=tuple(str(c) for c in data["class_names"]),
        image_size=int(data["image_size"]), backbone=str(data["backbone"]),
        config=TrainConfig.from_dict(data["config"]), tree=tree_from_dict(data["tree"]),
        compiled_flags=flags_from_data(data["compiled_flags"]), trained=bool(data["trained"]),
        run=Path(data["run"]) if data.get("run") else None)


def flags_to_data(flags: Any) -> list[list[Any]]:
    """Own trainable flags ((path, flag) pairs) as data."""
    return [[list(path), bool(flag)] for path, flag in flags]


def flags_from_data(items: Any) -> tuple[tuple[tuple[str, ...], bool], ...]:
    """Flags from ``flags_to_data``."""
    return tuple((tuple(str(n) for n in path), bool(flag)) for path, flag in items)


def summary_to_data(s: TrainSummary) -> dict[str, Any]:
    """A training summary as data."""
    return {"history": s.history, "run": str(s.run) if s.run else None,
            "phase_seconds": {str(k): v for k, v in s.phase_seconds.items()},
            "phase_accuracy": {str(k): v for k, v in s.phase_accuracy.items()},
            "decode_seconds": s.decode_seconds, "cancelled": s.cancelled,
            "problems": problems_to_data(s.problems), "model_saved": s.model_saved}


def summary_from_data(data: dict[str, Any]) -> TrainSummary:
    """A training summary from ``summary_to_data``."""
    return TrainSummary(
        history=[dict(h) for h in data["history"]],
        run=Path(data["run"]) if data.get("run") else None,
        phase_seconds={int(k): float(v) for k, v in data["phase_seconds"].items()},
        phase_accuracy={int(k): float(v) for k, v in data["phase_accuracy"].items()},
        decode_seconds=float(data["decode_seconds"]), cancelled=bool(data["cancelled"]),
        problems=problems_from_data(data["problems"]), model_saved=bool(data["model_saved"]))


# -- evaluation and prediction --------------------------------------------------------------
def prediction_to_data(p: Prediction) -> list[Any]:
    """One prediction as data."""
    return [str(p.path), [[c, float(v)] for c, v in p.top], p.error]


def prediction_from_data(item: Any) -> Prediction:
    """One prediction from ``prediction_to_data``."""
    path, top, error = item
    return Prediction(Path(str(path)), tuple((str(c), float(v)) for c, v in top),
                      None if error is None else str(error))


# -- the label audit --------------------------------------------------------------------
def _finding_to_data(f: Finding) -> list[Any]:
    return [str(f.path), f.problem, f.given_class, f.suggested_class, f.score,
            None if f.related_path is None else str(f.related_path), f.kind, f.detail, f.row,
            f.related_row]


def _finding_from_data(item: Any) -> Finding:
    path, problem, given, suggested, score, related, kind, detail, row, related_row = item
    if problem not in ("likely_mislabeled", "near_duplicate", "outlier"):
        raise ValueError(f"unknown audit problem {problem!r}")
    return Finding(Path(str(path)), problem, str(given), str(suggested), float(score),
                   None if related is None else Path(str(related)), str(kind), str(detail),
                   int(row), int(related_row))


def audit_summary_to_data(a: AuditSummary) -> dict[str, Any]:
    """An audit as data: findings, rows, out-of-fold probabilities (4 decimals) and the
    nearest images per finding; the feature matrix never crosses."""
    return {
        "root": str(a.root), "class_names": list(a.class_names),
        "paths": [str(p) for p in a.paths], "labels": list(a.labels),
        "probabilities": np.round(np.asarray(a.probabilities, np.float64), 4).tolist(),
        "findings": [_finding_to_data(f) for f in a.findings],
        "nearest": nearest_to_data(list(a.nearest)),
        "problems": problems_to_data(a.problems), "accuracy": a.accuracy,
        "backbone": a.backbone, "image_size": a.image_size, "seconds": dict(a.seconds)}


def audit_summary_from_data(data: dict[str, Any]) -> AuditSummary:
    """An audit from ``audit_summary_to_data``."""
    names = tuple(str(c) for c in data["class_names"])
    probs = np.asarray(data["probabilities"], dtype=np.float32).reshape(-1, len(names))
    return AuditSummary(
        root=Path(data["root"]), class_names=names,
        paths=tuple(Path(str(p)) for p in data["paths"]),
        labels=tuple(int(v) for v in data["labels"]), probabilities=probs,
        findings=tuple(_finding_from_data(f) for f in data["findings"]),
        nearest=tuple(nearest_from_data(data["nearest"])),
        problems=problems_from_data(data["problems"]), accuracy=float(data["accuracy"]),
        backbone=str(data["backbone"]), image_size=int(data["image_size"]),
        seconds={str(k): float(v) for k, v in data["seconds"].items()})


def nearest_from_data(items: Any) -> list[tuple[Nearest, ...]]:
    """Per query of the engine's ``neighbours`` call, the nearest images per class."""
    return [tuple(Nearest(str(c), tuple(Path(str(p)) for p in paths),
                          tuple(float(v) for v in sims)) for c, paths, sims in per)
            for per in items]


def nearest_to_data(per_query: list[tuple[Nearest, ...]]) -> list[Any]:
    """The answer of the engine's ``neighbours`` call as data."""
    return [[[n.class_name, [str(p) for p in n.paths], list(n.similarity)] for n in per]
            for per in per_query]


# -- heat maps ------------------------------------------------------------------------------
def heatmap_to_data(h: HeatMap) -> dict[str, Any]:
    """A heat map as data: its small grid (3 decimals), or why there is none."""
    return {"path": str(h.path), "grid": np.round(np.asarray(h.grid, np.float64), 3).tolist(),
            "class": h.class_name, "probability": h.probability, "error": h.error}


def heatmap_from_data(data: dict[str, Any]) -> HeatMap:
    """A heat map from ``heatmap_to_data``; a grid that is not 2-D is refused."""
    grid = np.asarray(data.get("grid") or np.zeros((0, 0)), dtype=np.float32)
    if grid.ndim != 2:
        raise ValueError("a heat map grid must be 2-D")
    error = data.get("error")
    return HeatMap(Path(str(data["path"])), np.clip(grid, 0.0, 1.0), str(data.get("class", "")),
                   float(data.get("probability", 0.0)), None if error is None else str(error))
