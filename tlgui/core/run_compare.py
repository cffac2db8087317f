"""One run in full, and several side by side: curves, accuracy per phase and per class,
and the settings that differed.

Plain files and no Keras (the window and ``tlgui runs show/compare`` use it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlgui.core.metrics import Evaluation, evaluation_from_data
from tlgui.core.run_catalog import (
    RunError,
    RunRecord,
    looks_like_run,
    read_history,
    read_record,
)
from tlgui.core.runs import EVALUATION_FILE, load_layers, read_json


class _Missing:
    """A setting one run's config does not have."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class RunDetails:
    """Everything a run folder says about its run.

    Attributes:
        record: the run as listed.
        config: ``config.json`` as stored ({} when missing or unreadable).
        class_names: the classes in output order (``classes.json``; () when unreadable).
        history: one dict per epoch across both phases.
        evaluation: the stored evaluation, or None when the run was not evaluated.
        evaluation_problem: why ``evaluation.json`` could not be used ("" when fine).
        files: (name, size in bytes) of the folder's entries; size is 0 for a folder.
        layers: the layer ticks it was trained with (path, own trainable flag).
    """

    record: RunRecord
    config: dict[str, Any]
    class_names: tuple[str, ...]
    history: tuple[dict[str, Any], ...]
    evaluation: Evaluation | None
    evaluation_problem: str
    files: tuple[tuple[str, int], ...]
    layers: tuple[tuple[tuple[str, ...], bool], ...] = ()

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.record.path

    @property
    def recall(self) -> dict[str, float] | None:
        """Recall per class from the stored evaluation, or None without one."""
        if self.evaluation is None:
            return None
        return {m.name: m.recall for m in self.evaluation.per_class}


@dataclass(frozen=True)
class ConfigDifference:
    """A setting whose value differed between the compared runs.

    Attributes:
        key: the dotted name (``phase2.learning_rate``).
        values: each run's value, in the order of the comparison (``MISSING`` when a run
            has no such setting).
    """

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Comparison:
    """Runs side by side.

    Attributes:
        runs: the runs in the order asked for.
        phases: the phases any of them trained, ascending.
        class_names: every class of any run, in the order first seen.
        differences: the settings that differ (dataset and classes first).
    """

    runs: tuple[RunDetails, ...]
    phases: tuple[int, ...]
    class_names: tuple[str, ...]
    differences: tuple[ConfigDifference, ...]


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def format_value(value: Any) -> str:
    """A setting as a short text: ``–`` for missing, ``none`` for None, ``yes``/``no``."""
    if value is MISSING:
        return "–"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def load_details(run: Path) -> RunDetails:
    """Reads a run folder in full (bounded reads; damaged files become empty values).

    Raises:
        RunError: ``run`` is not a run folder.
    """
    if not looks_like_run(run):
        raise RunError(f"{run} is not a run folder (it has no status.json or config.json).")
    record = read_record(run)
    config: dict[str, Any] = {}
    try:
        data = read_json(run / "config.json")
        config = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        pass
    try:
        names = read_json(run / "classes.json")
        # Names of another type would be shown as if they were names: none then.
        class_names = tuple(names) if isinstance(names, list) \
            and all(isinstance(n, str) for n in names) else ()
    except (OSError, ValueError):
        class_names = ()
    evaluation, problem = None, ""
    if record.has_evaluation:
        try:
            data = read_json(run / EVALUATION_FILE)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            evaluation = evaluation_from_data(data)
        except (OSError, ValueError) as exc:
            problem = f"{EVALUATION_FILE} cannot be used: {exc}"
    try:
        files = tuple(sorted((p.name, p.stat().st_size if p.is_file() else 0)
                             for p in run.iterdir() if not p.name.startswith(".")))
    except OSError:
        files = ()
    return RunDetails(record, config, class_names, tuple(read_history(run)), evaluation,
                      problem, files, load_layers(run))


def compare_runs(runs: Sequence[Path]) -> Comparison:
    """Puts runs side by side.

    Args:
        runs: run folders, in the order to show them.

    Returns:
        Their histories, accuracy per phase, recall per class (None for a run without an
        evaluation) and the settings whose values differ.

    Raises:
        RunError: one of them is not a run folder.
    """
    details = tuple(load_details(Path(r)) for r in runs)
    phases = sorted({p for d in details for p in d.record.phase_accuracy}
                    | {int(h["phase"]) for d in details for h in d.history
                       if isinstance(h.get("phase"), int)})
    class_names: list[str] = []
    for d in details:
        names = d.class_names or (d.evaluation.class_names if d.evaluation else ())
        class_names += [n for n in names if n not in class_names]
    return Comparison(details, tuple(phases), tuple(class_names), differences(details))


# Settings added after some runs were saved: a run without the key ran with this value.
ADDED_LATER = {"phase1.schedule": "constant", "phase2.schedule": "constant"}


def differences(details: Sequence[RunDetails]) -> tuple[ConfigDifference, ...]:
    """The settings (dataset and classes first, layer ticks last) whose values are not all
    the same."""
    rows = [{"dataset": str(d.record.dataset) if d.record.dataset else MISSING,
             "classes": list(d.class_names) if d.class_names else MISSING,
             **(ADDED_LATER if d.config else {}), **flatten(d.config)} for d in details]
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = []
    for key in keys:
        values = tuple(row.get(key, MISSING) for row in rows)
        if any(not _same(v, values[0]) for v in values[1:]):
            out.append(ConfigDifference(key, values))
    # The ticks decide what phase 2 trains (config's fine_tune_at is only where they start).
    ticked = [frozenset(p for p, flag in d.layers if flag) if d.layers else None
              for d in details]
    if any(t != ticked[0] for t in ticked[1:]):
        out.append(ConfigDifference("layers", tuple(
            MISSING if t is None else f"{len(t)} of {len(d.layers)}"
            for t, d in zip(ticked, details, strict=True))))
    return tuple(out)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a is b or (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b))
