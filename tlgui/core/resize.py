"""The one resize used everywhere: the same op as the model's ``Resizing`` layer.

Training images are resized by this function when they enter the pixel cache, and an
exported model resizes raw input with a ``keras.layers.Resizing`` layer with the same
settings, so training and inference see the same pixels (up to uint8 rounding).
"""

from __future__ import annotations

import numpy as np

INTERPOLATION = "bilinear"
ANTIALIAS = True


def resize_to_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resizes an RGB uint8 image to ``size`` x ``size`` (aspect ratio not kept).

    Args:
        pixels: array (height, width, 3), uint8.
        size: output side.

    Returns:
        Array (size, size, 3), uint8.
    """
    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    import keras

    out = keras.ops.image.resize(
        pixels[None].astype(np.float32), (size, size),
        interpolation=INTERPOLATION, antialias=ANTIALIAS,
    )
    arr = np.asarray(keras.ops.convert_to_numpy(out))[0]
    result: np.ndarray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return result
