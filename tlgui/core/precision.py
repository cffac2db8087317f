"""Mixed precision on GPUs that gain from it, and float32 everywhere a model leaves tlgui.

``resolve_precision`` turns the ``precision`` setting into a Keras dtype policy:

- ``auto``: ``mixed_float16`` on an NVIDIA GPU of compute capability 7.0 or newer
  (Volta and later have float16 tensor cores; Keras scales the loss against underflow),
  ``float32`` elsewhere (CPUs, Apple's GPU, older GPUs, a GPU whose capability the
  backend does not report). Not ``mixed_bfloat16``, although Ampere and later GPUs run
  it as fast and need no loss scaling: with its 8-bit mantissa, MobileNetV2's
  probabilities moved by up to 0.5 against the same weights in float32 (measured on the
  CPU, see ``EXPORT_TOLERANCE``), so a model's exported copy would not behave like the
  one validated in training; float16 (10 bits) moved them by 0.03 at most.
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
# policy and its float32 copy. Measured on the CPU under all three backends with real
# MobileNetV2 weights at 96 px and random heads (weights of standard deviation 0.1 and
# 0.3), on 32 flower photos: float16 at most 0.028, same top class on 32 of 32; bfloat16
# up to 0.50, and a different top class on 1 of 32 under PyTorch. The float32 copy is
# the more exact of the two. Not measured on a GPU, whose float16 kernels accumulate in
# float32 and should differ less.
EXPORT_TOLERANCE = {"float32": 1e-6, "mixed_float16": 0.03, "mixed_bfloat16": 0.5}


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
