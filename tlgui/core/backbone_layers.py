"""The Keras side of a backbone: its constructor and its preprocessing as layers.

Preprocessing is expressed with built-in, serialisable Keras layers (never ``Lambda``)
so a saved model takes raw pixels and loads in Keras safe mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tlgui.core.backbones import BackboneSpec

# ImageNet mean and variance on the 0..1 scale, as in keras.applications "torch" mode.
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_VAR = (0.229**2, 0.224**2, 0.225**2)


def constructor(spec: BackboneSpec) -> Callable[..., Any]:
    """The ``keras.applications`` function that builds this backbone."""
    import keras

    return getattr(keras.applications, spec.name)  # type: ignore[no-any-return]


def constructor_kwargs(spec: BackboneSpec) -> dict[str, Any]:
    """Extra keyword arguments for the constructor."""
    if spec.preprocessing == "builtin" and spec.name.startswith(
        ("EfficientNetV2", "ConvNeXt", "MobileNetV3")
    ):
        return {"include_preprocessing": True}
    return {}


def preprocessing_layers(spec: BackboneSpec) -> list[Any]:
    """Built-in Keras layers mapping 0..255 float pixels to what the backbone expects."""
    import keras

    if spec.preprocessing == "tf":
        return [keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")]
    if spec.preprocessing == "torch":
        return [
            keras.layers.Rescaling(1.0 / 255.0, name="preprocess_scale"),
            keras.layers.Normalization(
                mean=list(_TORCH_MEAN), variance=list(_TORCH_VAR), name="preprocess"
            ),
        ]
    return []
