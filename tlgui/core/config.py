"""Frozen configuration dataclasses: everything a training run depends on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Optimizer = Literal["adam", "adamw", "rmsprop", "sgd"]
AugmentMode = Literal["cached_views", "per_epoch", "off"]


@dataclass(frozen=True)
class SplitConfig:
    """How a dataset without its own validation folder is split.

    Attributes:
        validation_fraction: share of each class held out for validation.
        seed: the split is a pure function of the file list and this seed.
    """

    validation_fraction: float = 0.2
    seed: int = 1337


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation layers of the model (inactive at inference).

    Attributes:
        flip: random horizontal flips.
        rotation: largest rotation as a fraction of a full turn (0.05 = 18 degrees).
        zoom: largest zoom in or out as a fraction of the image size.
        contrast: largest contrast change as a fraction.
        mode: ``cached_views`` computes the frozen backbone once per fixed augmented view
            and trains on those (fast); ``per_epoch`` draws fresh random augmentation
            every batch through the whole model (slow, the textbook recipe); ``off``
            uses the plain images only.
        views: number of fixed views in ``cached_views`` mode: view 0 is the image,
            view 1 its mirror, further views are seeded random augmentations. Phase 1
            trains the head on view 0; phase 2 draws one view per image each epoch.
    """

    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    contrast: float = 0.1
    mode: AugmentMode = "cached_views"
    views: int = 2


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase.

    Attributes:
        epochs: number of epochs; 0 skips the phase.
        learning_rate: optimizer learning rate.
        optimizer: one of adam, adamw, rmsprop, sgd.
        early_stopping_patience: stop after this many epochs without a better
            validation loss and restore the best weights; None disables it.
    """

    epochs: int = 10
    learning_rate: float = 1e-3
    optimizer: Optimizer = "adam"
    early_stopping_patience: int | None = 5


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        backbone: registry name of the ImageNet backbone.
        image_size: square input size in pixels; None takes the backbone's default.
        weights: ``imagenet`` (found locally, see ``weights.py``), ``none`` for
            random initialisation (tests), or a path to a weights file.
        weights_dir: an extra folder searched first for weight files.
        phase1: head training with the backbone frozen.
        phase2: fine-tuning of the top of the backbone.
        fine_tune_at: first backbone layer (index or name) unfrozen in phase 2;
            None unfreezes the top ~35% of the backbone.
        batch_size: images per batch.
        dropout: dropout rate before the classifier.
        label_smoothing: label smoothing of the cross-entropy loss.
        class_weights: weight the loss by inverse class frequency when classes are
            imbalanced (over 1.5:1).
        augment: augmentation settings.
        split: validation split used when the dataset has no validation folder.
        seed: seed for weights of the head, view sampling and batch order.
        device: ``auto`` (the first GPU, else the CPU), ``cpu``, or a device id as
            ``tlgui devices`` lists it (``gpu:1``, ``mps``); see ``devices.py``.
        precision: ``auto`` (mixed precision on GPUs with tensor cores, else
            float32), ``float32``, ``mixed_float16`` or ``mixed_bfloat16``; see
            ``precision.py``. Saved and exported models are always float32.
    """

    backbone: str = "MobileNetV2"
    image_size: int | None = None
    weights: str = "imagenet"
    weights_dir: str | None = None
    phase1: PhaseConfig = field(default_factory=PhaseConfig)
    phase2: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(epochs=10, learning_rate=1e-4)
    )
    fine_tune_at: int | str | None = None
    batch_size: int = 32
    dropout: float = 0.2
    label_smoothing: float = 0.1
    class_weights: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    def replace(self, **changes: Any) -> TrainConfig:
        """Returns a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Builds a config from ``to_dict`` output; unknown keys are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if isinstance(kwargs.get("phase1"), dict):
            kwargs["phase1"] = PhaseConfig(**kwargs["phase1"])
        if isinstance(kwargs.get("phase2"), dict):
            kwargs["phase2"] = PhaseConfig(**kwargs["phase2"])
        if isinstance(kwargs.get("augment"), dict):
            kwargs["augment"] = AugmentConfig(**kwargs["augment"])
        if isinstance(kwargs.get("split"), dict):
            kwargs["split"] = SplitConfig(**kwargs["split"])
        return cls(**kwargs)
