"""Frozen configuration dataclasses: everything a training run depends on."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from tlgui.core.errors import ConfigError

Optimizer = Literal["adam", "adamw", "rmsprop", "sgd"]
Schedule = Literal["constant", "cosine"]
AugmentMode = Literal["cached_views", "per_epoch", "off"]
# NumPy's and Keras' seeds are unsigned 32-bit numbers.
MAX_SEED = 2**32 - 1


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
        schedule: ``constant``, or ``cosine``: the rate falls epoch by epoch along half a
            cosine, from ``learning_rate`` towards 0 at the phase's last planned epoch.
    """

    epochs: int = 10
    learning_rate: float = 1e-3
    optimizer: Optimizer = "adam"
    early_stopping_patience: int | None = 5
    schedule: Schedule = "constant"

    def rate(self, epoch: int) -> float:
        """The learning rate of the phase's ``epoch`` (0 = its first)."""
        if self.schedule != "cosine" or self.epochs <= 1:
            return self.learning_rate
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))


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
        devices: how many devices share each batch: ``1`` (the default), a number, or
            ``all``; more than one is data parallelism under the JAX backend (see
            ``distribution.py``, ADR 010).
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
    devices: str = "1"

    def replace(self, **changes: Any) -> TrainConfig:
        """Returns a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Builds a config from ``to_dict`` output; unknown keys are ignored, nested ones too.

        A run saved by a newer tlgui (a setting added since) then opens here with that
        setting at this version's default, as a top-level one always did.

        Raises:
            ValueError: a group (``phase1``...) is there but is not an object: an edited
                config.json would otherwise reach the window as a list in place of a phase.
        """
        kwargs = _known_keys(cls, data)
        for name, kind in (("phase1", PhaseConfig), ("phase2", PhaseConfig),
                           ("augment", AugmentConfig), ("split", SplitConfig)):
            if name not in kwargs:
                continue
            if not isinstance(kwargs[name], dict):
                raise ValueError(f"{name} is not an object")
            kwargs[name] = kind(**_known_keys(kind, kwargs[name]))
        return cls(**kwargs)


def _known_keys(kind: type, data: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(kind)}
    return {k: v for k, v in data.items() if k in known}


def parse_devices(value: str | int | None) -> int | None:
    """The device count a ``devices`` setting asks for (``1``, ``N``); None means all.

    Raises:
        ConfigError: neither ``all`` nor a whole number of at least 1.
    """
    if value is None:
        return 1
    text = str(value).strip().lower()
    if text == "all":
        return None
    # isascii: "²" is a digit to isdigit, and not to int().
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()):
        raise ConfigError(f"--devices must be 'all' or a whole number (got {value!r}).")
    if int(text) < 1:
        raise ConfigError(f"--devices must be at least 1 (got {text}).")
    return int(text)


# -- range checks ---------------------------------------------------------------------------
# Each setting's name in messages; callers pass their own (the command line's options).
Names = Mapping[str, str]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number (got {value!r}).")
    return float(value)


def _whole(value: Any, name: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number (got {value!r}).")
    if value < low or (high is not None and value > high):
        where = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {where} (got {value}).")


def _fraction(value: Any, name: str) -> None:
    """A share in ``[0, 1)``."""
    x = _number(value, name)
    if not 0.0 <= x < 1.0:
        raise ConfigError(f"{name} must be at least 0 and below 1 (got {value}).")


def check_split(split: SplitConfig, names: Names | None = None) -> None:
    """Refuses a split that cannot work, before the scan.

    Raises:
        ConfigError: naming the setting (``names`` maps ``validation_fraction`` and
            ``seed`` to what the user calls them) and the allowed range.
    """
    names = names or {}
    _fraction(split.validation_fraction,
              names.get("validation_fraction", "The validation share"))
    _whole(split.seed, names.get("seed", "The split seed"), 0, MAX_SEED)


def _check_phase(phase: PhaseConfig, key: str, names: Names) -> None:
    _whole(phase.epochs, names.get(f"{key}.epochs", f"The {key} epochs"), 0)
    rate_name = names.get(f"{key}.learning_rate", f"The {key} learning rate")
    if _number(phase.learning_rate, rate_name) <= 0:
        raise ConfigError(f"{rate_name} must be above 0 (got {phase.learning_rate}).")
    if phase.schedule not in get_args(Schedule):
        what = names.get(f"{key}.schedule", f"The {key} schedule")
        raise ConfigError(f"{what} {str(phase.schedule)[:40]!r} is unknown: use "
                          f"{' or '.join(get_args(Schedule))}.")
    if phase.early_stopping_patience is not None:
        _whole(phase.early_stopping_patience,
               names.get(f"{key}.early_stopping_patience", f"The {key} patience"), 0)


def check_train_config(config: TrainConfig, names: Names | None = None) -> None:
    """Refuses settings that cannot work, before the scan and the model: a batch of 0
    images would fail only after the features were computed, a negative seed in the
    middle of the build, a NaN learning rate after the first epoch.

    Args:
        config: the settings.
        names: what the user calls each setting, by its path in the config
            (``batch_size``, ``phase1.epochs``, ``split.validation_fraction``...).

    Raises:
        ConfigError: naming the setting and the allowed range.
    """
    names = names or {}
    _whole(config.batch_size, names.get("batch_size", "The batch size"), 1)
    _whole(config.seed, names.get("seed", "The seed"), 0, MAX_SEED)
    check_split(config.split, {k.removeprefix("split."): v for k, v in names.items()
                               if k.startswith("split.")})
    _check_phase(config.phase1, "phase1", names)
    _check_phase(config.phase2, "phase2", names)
    _fraction(config.dropout, names.get("dropout", "The dropout rate"))
    _fraction(config.label_smoothing, names.get("label_smoothing", "The label smoothing"))
    _whole(config.augment.views, names.get("augment.views", "The number of views"), 1)
    parse_devices(config.devices)
    for what in ("rotation", "zoom", "contrast"):
        value = getattr(config.augment, what)
        label = names.get(f"augment.{what}", f"The {what} augmentation")
        if _number(value, label) < 0:
            raise ConfigError(f"{label} must be at least 0 (got {value}).")
