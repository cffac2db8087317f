"""Mixed precision on GPUs that gain from it, and float32 everywhere a model leaves tlgui.

``resolve_precision`` turns the ``precision`` setting into a Keras dtype policy:

- ``auto``: ``mixed_bfloat16`` on an NVIDIA GPU of compute capability 8.0 or newer
  (Ampere and later: bfloat16 tensor cores, float32's range, so no loss scaling),
  ``mixed_float16`` on 7.x (Volta, Turing: float16 tensor cores; Keras scales the loss),
  ``float32`` elsewhere (CPUs, Apple's GPU, older GPUs, a GPU whose capability the
  backend does not report).
- ``float32``, ``mixed_float16``, ``mixed_bfloat16``: that policy on any device (the
  tests force a mixed one on the CPU).

Under a mixed policy the weights stay float32 and layers compute in the lower precision;
the classifier's Dense layer (with its softmax) is always float32 (``model.py``), so
outputs are float32 probabilities. ``float32_copy`` rebuilds a model with every layer in
float32 and the same weights: checkpoints and exports always hold that copy, and agree
with the in-memory mixed model within ``EXPORT_TOLERANCE`` (measured in
tests/core/test_precision.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from tlgui.core.devices import DeviceInfo
from tlgui.core.errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# Largest difference of a softmax probability between a model computed in a mixed
# policy and its float32 copy (tiny test models on the CPU measured below 0.01 for
# float16 and below 0.03 for bfloat16, whose mantissa has 8 bits).
EXPORT_TOLERANCE = {"float32": 1e-6, "mixed_float16": 0.02, "mixed_bfloat16": 0.06}


def resolve_precision(setting: str | None, device: DeviceInfo) -> str:
    """The Keras dtype policy name for ``setting`` on ``device``.

    Raises:
        ConfigError: an unknown setting.
    """
    value = (setting or "auto").strip().lower()
    if value == "mixed":
        value = "auto" if device.is_gpu else "mixed_bfloat16"
    if value not in PRECISIONS:
        raise ConfigError(f"Unknown precision '{setting}': use {', '.join(PRECISIONS)}.")
    if value != "auto":
        return value
    cc = device.compute_capability
    if not device.is_gpu or cc is None:
        return "float32"
    if cc >= (8, 0):
        return "mixed_bfloat16"
    if cc >= (7, 0):
        return "mixed_float16"
    return "float32"


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Layers and models created in the block get this global dtype policy."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def model_precision(model: Any) -> str:
    """The policy most of the model computes in: ``float32`` or a mixed policy's name."""
    for layer in _all_layers(model):
        name = getattr(getattr(layer, "dtype_policy", None), "name", "float32")
        if str(name).startswith("mixed_"):
            return str(name)
    return "float32"


def _all_layers(model: Any) -> Iterator[Any]:
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)


def _float32_config(config: Any) -> Any:
    """A layer or model config with every mixed dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and \
                str(config.get("config", {}).get("name", "")).startswith("mixed_"):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {k: _float32_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_config(v) for v in config]
    return config


def float32_copy(model: Any) -> Any:
    """``model`` itself when it computes in float32, else a float32 copy with its weights."""
    if model_precision(model) == "float32":
        return model
    import keras

    config = _float32_config(keras.saving.serialize_keras_object(model))
    with dtype_policy("float32"):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    if model_precision(copy) != "float32":
        raise ConfigError("The model could not be converted to float32 for saving.")
    return copy
