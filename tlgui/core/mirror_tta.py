"""Test-time augmentation: the classifier's answer averaged over an image and its mirror.

``mirror_average`` builds a second Keras model that shares every weight of the classifier
and outputs the mean of its probabilities for the image and for the image mirrored left to
right. Evaluation, prediction and export all use that one model, so a figure measured in the
window is the figure the exported file gives.

The mirror is made of built-in layers only (``Permute``, a frozen ``Dense`` holding the
anti-diagonal 0/1 matrix, ``Permute``), placed right after the resize, where the width is
known: a ``.keras`` file with it loads in plain Keras safe mode, and TFLite and ONNX convert
it like any other layer. Multiplying by 1 and adding zeros is exact in float32, so the
mirrored branch sees exactly the mirrored pixels (on GPUs that run float32 matrix products
in TF32 the pixels are rounded to 1/1024 of their value, far below what changes a class).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tlgui.core.errors import ConfigError
from tlgui.core.model_names import HEAD_NAME, INPUT_NAME

MIRROR_NAME = "mirror"
AVERAGE_NAME = "mirror_average"
# Layers that act only in training; both branches skip them, as an exported model does.
_TRAINING_ONLY = ("augmentation",)


def training_only(layer: Any) -> bool:
    """True for a layer that acts only in training (augmentation, ``Random*``, dropout):
    inference models, exported or mirrored, leave it out."""
    import keras

    return (layer.name in _TRAINING_ONLY or isinstance(layer, keras.layers.Dropout)
            or type(layer).__name__.startswith("Random"))


def has_mirror(model: Any) -> bool:
    """True when ``model`` already averages over the mirror (an export made with it)."""
    return any(layer.name == AVERAGE_NAME for layer in getattr(model, "layers", ()))


def _chain(model: Any) -> list[Any]:
    """The classifier's layers in order, when they form one chain as tlgui builds them."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in layers]
    if "resize" not in names or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConfigError(
            "Mirror averaging needs a classifier trained by tlgui (this model has no resize "
            "layer to mirror after).")
    if names[-1] != HEAD_NAME:
        # The layers in order are a chain only when the head comes last, as tlgui builds it.
        raise ConfigError(
            "Mirror averaging needs a classifier trained by tlgui (its last layer is "
            f"'{names[-1]}', not the '{HEAD_NAME}' head).")
    return layers


def _mirror(width: int) -> list[Any]:
    import keras

    flip = keras.layers.Dense(width, use_bias=False, trainable=False, dtype="float32",
                              name=MIRROR_NAME)
    return [keras.layers.Permute((1, 3, 2), dtype="float32", name=f"{MIRROR_NAME}_to_rows"),
            flip,
            keras.layers.Permute((1, 3, 2), dtype="float32", name=f"{MIRROR_NAME}_back")]


def mirror_average(model: Any) -> Any:
    """A model that shares ``model``'s weights and averages it over the image and its mirror.

    Training-only layers (augmentation, ``Random*``, dropout) are left out of both branches.
    A model that already averages over the mirror is returned as it is.

    Raises:
        ConfigError: the model is not a chain with a fixed-size ``resize`` layer (a file
            not trained by tlgui).
    """
    if has_mirror(model):
        return model
    layers = _chain(model)
    try:
        return _build(model, layers)
    except ConfigError:
        raise
    except Exception as exc:  # a crafted file: its layers do not chain as tlgui's do
        raise ConfigError(f"Mirror averaging needs a classifier trained by tlgui ({exc}).") \
            from exc


def _build(model: Any, layers: list[Any]) -> Any:
    import keras

    inputs = keras.Input((None, None, 3), dtype="uint8", name=INPUT_NAME)
    a = b = inputs
    mirror: list[Any] = []
    for layer in layers:
        if training_only(layer):
            continue
        # Inference pinned in the graph, as tlgui builds its classifier (ADR 002): a caller
        # of the exported model who leaves ``training`` out must not get batch statistics.
        kwargs = {"training": False} if getattr(layer, "_call_has_training_arg", False) \
            else {}
        a = layer(a, **kwargs)
        b = layer(b, **kwargs) if mirror else a
        if layer.name == "resize":
            if not isinstance(layer, keras.layers.Resizing):
                raise ConfigError("Mirror averaging needs a classifier trained by tlgui (its "
                                  "'resize' layer does not resize).")
            width = int(layer.width)
            mirror = _mirror(width)
            for part in mirror:
                b = part(b)
            mirror[1].set_weights([np.eye(width, dtype=np.float32)[::-1]])
    if not mirror:
        raise ConfigError("Mirror averaging needs a classifier with a resize layer.")
    # The unmirrored branch must be the classifier itself: a graph that only looks like
    # tlgui's (a crafted file) would otherwise give other answers without a word.
    probe = np.random.default_rng(0).integers(0, 256, (1, width, width, 3), dtype=np.uint8)
    own = np.asarray(keras.ops.convert_to_numpy(model(probe, training=False)), np.float64)
    rebuilt = np.asarray(keras.ops.convert_to_numpy(keras.Model(inputs, a)(probe)),
                         np.float64)  # ``training`` left out: the graph must pin it
    if own.shape != rebuilt.shape or not np.allclose(own, rebuilt, atol=1e-3):
        raise ConfigError("Mirror averaging needs a classifier trained by tlgui (its layers "
                          "are not one chain).")
    out = keras.layers.Average(dtype="float32", name=AVERAGE_NAME)([a, b])
    return keras.Model(inputs, out, name=f"{model.name}_mirror_average")
