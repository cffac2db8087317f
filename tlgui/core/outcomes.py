"""What the engine's jobs hand back to the window: plain data about models and runs.

The Keras objects stay in the engine process; the window works with these descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlgui.core.config import TrainConfig
from tlgui.core.dataset import Problem
from tlgui.core.layer_tree import (
    Flags,
    LayerNode,
    first_trainable_backbone_index,
    own_flags,
    param_counts,
)


@dataclass
class ModelInfo:
    """The model the engine holds for the window.

    Attributes:
        class_names: output order of the classifier.
        image_size: the square side the backbone sees.
        backbone: registry name of the backbone.
        config: the settings it was built with.
        tree: its layers; the window edits the flags on it.
        compiled_flags: the own flags it was last compiled with (the recompile gate).
        trained: True when it holds trained weights (after training, or opened from a run).
        run: the run folder it was trained in or opened from.
    """

    class_names: tuple[str, ...]
    image_size: int
    backbone: str
    config: TrainConfig
    tree: LayerNode
    compiled_flags: Flags
    trained: bool = False
    run: Path | None = None

    @property
    def needs_recompile(self) -> bool:
        """True when the ticks changed since the model was last compiled."""
        return own_flags(self.tree) != self.compiled_flags

    def first_trainable_backbone_index(self) -> int | None:
        """Index of the lowest backbone layer that phase 2 trains, or None."""
        return first_trainable_backbone_index(self.tree)

    def param_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters by the current ticks."""
        return param_counts(self.tree)


@dataclass
class TrainSummary:
    """What a training job produced (the model itself stays in the engine).

    Attributes:
        history: one dict per epoch across both phases (global epoch numbering).
        run: the run folder, or None when none was written.
        phase_seconds: wall time per phase.
        phase_accuracy: best validation accuracy per phase.
        decode_seconds: time spent loading the images.
        cancelled: True when the user stopped it.
        problems: files that could not be decoded and were left out.
        model_saved: True when the run folder holds a model (an epoch finished).
    """

    history: list[dict[str, Any]]
    run: Path | None
    phase_seconds: dict[int, float] = field(default_factory=dict)
    phase_accuracy: dict[int, float] = field(default_factory=dict)
    decode_seconds: float = 0.0
    cancelled: bool = False
    problems: tuple[Problem, ...] = ()
    model_saved: bool = False

    @property
    def trained(self) -> bool:
        """True when at least one epoch finished, so there is a model to use."""
        return bool(self.history) and self.model_saved
