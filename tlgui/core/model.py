"""The classifier: raw pixels -> resize -> augmentation -> preprocessing -> backbone -> head.

``ClassifierModel`` wraps the Keras model and enforces the recompile gate: changing a
layer's ``trainable`` flag has no effect on training until the model is compiled again, so
training a model whose flags changed since its last compile raises ``RecompileRequired``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

from tlgui.core import backbone_layers, backbones
from tlgui.core.config import AugmentConfig, PhaseConfig, TrainConfig
from tlgui.core.entries import printable
from tlgui.core.errors import ConfigError, RecompileRequired
from tlgui.core.model_names import BACKBONE_NAME, HEAD_NAME, INPUT_NAME
from tlgui.core.weights import check_weights_file, resolve_weights

log = logging.getLogger(__name__)

DEFAULT_FINE_TUNE_FRACTION = 0.35


def augmentation_layers(cfg: AugmentConfig, seed: int) -> list[Any]:
    """Built-in random augmentation layers; inactive at inference."""
    import keras

    layers: list[Any] = []
    if cfg.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if cfg.rotation > 0:
        layers.append(keras.layers.RandomRotation(cfg.rotation, fill_mode="reflect", seed=seed + 1))
    if cfg.zoom > 0:
        layers.append(keras.layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=seed + 2))
    if cfg.contrast > 0:
        layers.append(keras.layers.RandomContrast(cfg.contrast, value_range=(0, 255),
                                                  seed=seed + 3))
    return layers


def iter_layers(layer: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yields (path, layer) for every layer below ``layer``, depth first."""
    for sub in getattr(layer, "layers", []):
        path = (*prefix, sub.name)
        yield path, sub
        yield from iter_layers(sub, path)


def make_inference_backbone_trainer(pre: list[Any], frozen: Any, post: list[Any],
                                    name: str) -> Any:
    """A model running ``pre`` -> ``frozen(training=False)`` -> ``post``, for fitting.

    Keras 3 (seen in 3.15) lets the outer ``training=True`` of ``fit`` override a
    ``training=False`` recorded on a nested model's call in a functional graph, so
    BatchNormalization layers of an unfrozen backbone would switch to batch statistics
    and update their ImageNet moving averages. A subclassed ``call`` that passes
    ``training=False`` explicitly is honoured, so training always goes through this
    wrapper; it shares the layer objects, so fitting it trains the classifier.
    """
    import keras

    class InferenceBackboneTrainer(keras.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name=name)
            self.pre_layers = list(pre)
            self.frozen_part = frozen
            self.post_layers = list(post)

        def call(self, x: Any, training: bool | None = None) -> Any:
            for layer in self.pre_layers:
                x = layer(x, training=training) if _takes_training(layer) else layer(x)
            if self.frozen_part is not None:
                x = self.frozen_part(x, training=False)
            for layer in self.post_layers:
                x = layer(x, training=training) if _takes_training(layer) else layer(x)
            return x

    return InferenceBackboneTrainer()


def _load_backbone_weights(base: Any, weights: str, backbone: str) -> None:
    """Loads a weights file into the backbone, or says in one line why it does not fit.

    A file made for another model (a whole tlgui ``.keras`` model, another backbone)
    makes Keras warn once per layer and raise a many-line message: the warnings and the
    message are logged, and the error says in words what is wrong.

    Raises:
        ConfigError: the file does not fit the backbone.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            base.load_weights(weights)
        except Exception as exc:
            log.info("loading %s into %s failed", weights, backbone, exc_info=True)
            # Keras' own text names layers and shapes, and stops mid-sentence when cut
            # to a line; it stays in the log.
            raise ConfigError(
                f"The weights file {printable(weights)} does not fit {backbone}: its "
                "layers or their shapes differ (a whole model, or the weights of another "
                f"backbone or size?). Give the ImageNet weights of {backbone} without its "
                "top, or choose weights: imagenet.") from exc
        finally:
            for w in caught:
                log.info("while loading %s: %s", weights, w.message)


def _takes_training(layer: Any) -> bool:
    return bool(getattr(layer, "_call_has_training_arg", False))


def make_optimizer(phase: PhaseConfig) -> Any:
    """The Keras optimizer a phase asks for."""
    import keras

    opts = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    if phase.optimizer not in opts:
        raise ConfigError(f"Unknown optimizer '{phase.optimizer}'; use one of {', '.join(opts)}.")
    if not phase.learning_rate > 0:
        raise ConfigError(f"The learning rate must be above 0 (got {phase.learning_rate}).")
    return opts[phase.optimizer](learning_rate=phase.learning_rate)


class ClassifierModel:
    """A Keras image classifier with a named backbone and a recompile gate.

    Attributes:
        model: the full Keras model; input uint8 images of any size.
        backbone: the nested ``keras.applications`` model.
        class_names: output order of the classifier.
        image_size: side of the square image the backbone sees.
        backbone_name: registry name.
    """

    def __init__(self, model: Any, class_names: tuple[str, ...], backbone_name: str,
                 image_size: int) -> None:
        self.model = model
        self.class_names = tuple(class_names)
        self.backbone_name = backbone_name
        self.image_size = image_size
        self._compiled_flags: tuple[tuple[tuple[str, ...], bool], ...] | None = None
        self.compiled_phase: PhaseConfig | None = None
        self.trainer: Any = None

    # -- construction ------------------------------------------------------------
    @classmethod
    def build(cls, config: TrainConfig,
              class_names: tuple[str, ...] | list[str]) -> ClassifierModel:
        """Builds a new classifier.

        Args:
            config: backbone, size, weights, dropout and augmentation settings.
            class_names: the classes, in output order.

        Raises:
            WeightsNotFound: ImageNet weights were asked for and none can be found.
            ConfigError: a setting is out of range.
        """
        import keras

        spec = backbones.get(config.backbone)
        size = config.image_size or spec.default_size
        if size < spec.min_size:
            raise ConfigError(
                f"Image size {size} px is too small for {spec.name}; use at least "
                f"{spec.min_size}.")
        if len(class_names) < 2:
            raise ConfigError("A classifier needs at least two classes.")
        if config.weights == "imagenet":
            weights: str | None = str(resolve_weights(spec, size, config.weights_dir))
        elif config.weights in ("none", "", None):
            weights = None
        else:
            weights = str(check_weights_file(config.weights))
        keras.utils.set_random_seed(config.seed)
        base = backbone_layers.constructor(spec)(
            include_top=False, weights=None, input_shape=(size, size, 3),
            **backbone_layers.constructor_kwargs(spec),
        )
        # Some constructors look their block layout up by ``name``: rename afterwards.
        base.name = BACKBONE_NAME
        if weights:
            _load_backbone_weights(base, weights, spec.name)
        base.trainable = False

        inputs = keras.Input((None, None, 3), dtype="uint8", name=INPUT_NAME)
        x = keras.layers.Rescaling(1.0, name="to_float")(inputs)
        x = keras.layers.Resizing(size, size, interpolation="bilinear", antialias=True,
                                  name="resize")(x)
        aug = augmentation_layers(config.augment, config.seed)
        if aug and config.augment.mode != "off":
            x = keras.Sequential(aug, name="augmentation")(x)
        for layer in backbone_layers.preprocessing_layers(spec):
            x = layer(x)
        x = base(x, training=False)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dropout(config.dropout, seed=config.seed, name="dropout")(x)
        # float32 under a mixed precision policy too: the softmax and the probabilities
        # it outputs keep full precision (precision.py).
        outputs = keras.layers.Dense(len(class_names), activation="softmax",
                                     dtype="float32", name=HEAD_NAME)(x)
        model = keras.Model(inputs, outputs, name="tlgui_classifier")
        return cls(model, tuple(class_names), spec.name, size)

    @classmethod
    def from_model(cls, model: Any, class_names: tuple[str, ...], backbone_name: str,
                   image_size: int) -> ClassifierModel:
        """Wraps a classifier loaded from a run's ``model.keras``.

        Raises:
            ModelFileError: the model does not have the layers tlgui builds (a nested
                ``backbone``, ``pool``, ``dropout`` and the ``classifier`` head).
        """
        from tlgui.core.errors import ModelFileError

        names = {layer.name for layer in model.layers}
        missing = {BACKBONE_NAME, "pool", "dropout", HEAD_NAME} - names
        if missing:
            raise ModelFileError(
                f"The model was not made by tlgui's training (no {', '.join(sorted(missing))} "
                "layer), so it cannot be opened for training; it can still predict.")
        return cls(model, tuple(class_names), backbone_name, image_size)

    # -- parts -------------------------------------------------------------------
    @property
    def backbone(self) -> Any:
        """The nested backbone model."""
        return self.model.get_layer(BACKBONE_NAME)

    @property
    def head(self) -> Any:
        """The final Dense layer."""
        return self.model.get_layer(HEAD_NAME)

    def layer(self, name: str) -> Any | None:
        """A top-level layer by name, or None."""
        for layer in self.model.layers:
            if layer.name == name:
                return layer
        return None

    def layer_at(self, path: tuple[str, ...] | list[str]) -> Any:
        """The layer at a name path, e.g. ``("backbone", "block_16_project")``."""
        current = self.model
        for name in path:
            current = current.get_layer(name)
        return current

    # -- trainable flags and the recompile gate ----------------------------------
    def trainable_flags(self) -> tuple[tuple[tuple[str, ...], bool], ...]:
        """Every layer's effective trainable flag, by path."""
        out = []
        for path, layer in iter_layers(self.model):
            out.append((path, bool(layer.trainable)))
        return tuple(out)

    @property
    def needs_recompile(self) -> bool:
        """True when trainable flags changed since the last compile, or it never was."""
        return self._compiled_flags is None or self._compiled_flags != self.trainable_flags()

    def check_compiled(self) -> None:
        """Raises ``RecompileRequired`` when training now would ignore trainable edits."""
        if self.needs_recompile:
            raise RecompileRequired(
                "Trainable layers changed since the model was compiled; recompile the "
                "model before training, or the change would be silently ignored."
            )

    def set_trainable(self, path: tuple[str, ...] | list[str], trainable: bool) -> None:
        """Sets one layer's trainable flag (and all layers inside it).

        Unfreezing a layer inside a frozen container unfreezes the container itself
        without changing the container's other layers.
        """
        path = tuple(path)
        target = self.layer_at(path)
        if trainable:
            for depth in range(1, len(path)):
                parent = self.layer_at(path[:depth])
                if not parent.trainable:
                    saved = [(sub, sub.trainable) for _, sub in iter_layers(parent)]
                    parent.trainable = True
                    for sub, flag in saved:
                        sub.trainable = flag
        target.trainable = trainable
        # Keras does not pass the flag down when the container already had it (seen in
        # 3.15: ticking a partly trainable backbone left its frozen layers frozen).
        for _, sub in iter_layers(target):
            sub.trainable = trainable

    def fine_tune_index(self, at: int | str | None) -> int:
        """The backbone layer index where fine-tuning starts.

        Args:
            at: an index into ``backbone.layers``, a layer name, or None for the top
                ~35% of the backbone, from the start of the block at that mark.
        """
        layers = self.backbone.layers
        if at is None:
            # The start of the block holding the 35% mark: a start inside a block left
            # that block half trained, which the plain layer view shows as "some layers".
            from tlgui.core.layer_tree_keras import find_blocks

            index = round(len(layers) * (1 - DEFAULT_FINE_TUNE_FRACTION))
            block = next((b for b in find_blocks(self.backbone) if b.first <= index <= b.last),
                         None)
            return block.first if block is not None else index
        if isinstance(at, str) and not at.lstrip("-").isdigit():
            for i, layer in enumerate(layers):
                if layer.name == at:
                    return i
            raise ConfigError(f"fine_tune_at: the backbone has no layer named '{at}'.")
        index = int(at)
        if index < 0:
            index += len(layers)
        if not 0 <= index <= len(layers):
            raise ConfigError(
                f"fine_tune_at {at} is outside the backbone's {len(layers)} layers."
            )
        return index

    def set_fine_tune_at(self, at: int | str | None) -> int:
        """Freezes ``backbone.layers[:index]`` and unfreezes the rest; returns the index."""
        index = self.fine_tune_index(at)
        base = self.backbone
        base.trainable = True
        for i, layer in enumerate(base.layers):
            layer.trainable = i >= index
        return index

    def freeze_backbone(self) -> None:
        """Freezes the whole backbone (phase 1)."""
        self.backbone.trainable = False

    def first_trainable_backbone_index(self) -> int | None:
        """Index of the lowest backbone layer with trainable weights, or None."""
        if not self.backbone.trainable:
            return None
        for i, layer in enumerate(self.backbone.layers):
            if layer.trainable and layer.trainable_weights:
                return i
        return None

    def param_counts(self) -> tuple[int, int]:
        """(trainable, total) parameter counts of the whole model."""
        import numpy as np

        trainable = sum(int(np.prod(w.shape)) for w in self.model.trainable_weights)
        total = sum(int(np.prod(w.shape)) for w in self.model.weights)
        return trainable, total

    # -- compile and fit ---------------------------------------------------------
    def full_trainer(self) -> Any:
        """The whole model as a trainer whose backbone always runs in inference mode."""
        before, after, seen = [], [], False
        for layer in self.model.layers[1:]:
            if layer.name == BACKBONE_NAME:
                seen = True
            elif seen:
                after.append(layer)
            else:
                before.append(layer)
        return make_inference_backbone_trainer(before, self.backbone, after, "full_trainer")

    def compile(self, phase: PhaseConfig, label_smoothing: float = 0.0) -> None:
        """Compiles the model for a phase; this is what clears the recompile gate."""
        import keras

        from tlgui.core.distribution import accuracy_metrics

        self.trainer = self.full_trainer()
        self.trainer.compile(
            optimizer=make_optimizer(phase),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            **accuracy_metrics(),  # weighted under several devices (distribution.py)
        )
        self.compiled_phase = phase
        self._compiled_flags = self.trainable_flags()

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        """``fit`` behind the recompile gate, with the backbone in inference mode."""
        self.check_compiled()
        return self.trainer.fit(*args, **kwargs)
