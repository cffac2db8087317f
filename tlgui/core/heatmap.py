"""Heat maps as data: where their cells sit, how they stretch over an image, their colours.

Kept apart from ``explain`` (which needs Keras to compute them) so that the window, which
never imports Keras, draws its overlays with the same interpolation, colour map and
opacity curve as the overlay PNGs of ``tlgui predict --explain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Colour map anchors (dark blue, blue, cyan, yellow, red) from 0 to 1: the usual reading
# of a heat map, cold to hot.
ANCHORS = np.array([[0, 0, 96], [0, 64, 255], [0, 224, 255], [255, 224, 0], [224, 0, 0]],
                   dtype=np.float32)
# Opacity of the hottest parts of an overlay.
OVERLAY_ALPHA = 0.45


@dataclass(frozen=True)
class Grid:
    """Where the heat map's cells sit on the model's square input.

    Cell ``(i, j)`` is centred at ``(x0 + step * j, y0 + step_y * i)`` pixels of the
    ``size x size`` input (0 = the left or top edge). tlgui spreads the cells evenly, as
    Grad-CAM is usually drawn: the receptive-field centres of MobileNetV2's last block
    lie half a cell right of and below that (its strided layers pad only after), but the
    measured peaks on generated images did not follow them consistently (ADR 005).
    """

    size: int
    x0: float
    step: float
    y0: float
    step_y: float

    @classmethod
    def even(cls, size: int, rows: int, cols: int) -> Grid:
        """Cells spread evenly over the input."""
        return cls(size, size / cols / 2, size / cols, size / rows / 2, size / rows)



def _positions(n_out: int, size: int, start: float, step: float, cells: int) -> np.ndarray:
    # Pixel centres of the output, in input pixels, as fractional cell indices.
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) * size / n_out
    out: np.ndarray = np.clip((centres - start) / step, 0.0, cells - 1.0)
    return out


def upsample(heatmap: np.ndarray, grid: Grid, width: int, height: int) -> np.ndarray:
    """The map interpolated bilinearly over ``width x height`` pixels, each cell's value
    at its centre (the model squashed the image to a square: the map stretches back)."""
    rows, cols = heatmap.shape
    fy = _positions(height, grid.size, grid.y0, grid.step_y, rows)
    fx = _positions(width, grid.size, grid.x0, grid.step, cols)
    y0 = np.minimum(fy.astype(np.int64), max(rows - 2, 0))
    x0 = np.minimum(fx.astype(np.int64), max(cols - 2, 0))
    y1, x1 = np.minimum(y0 + 1, rows - 1), np.minimum(x0 + 1, cols - 1)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    m = np.asarray(heatmap, dtype=np.float64)
    top = m[y0][:, x0] * (1 - wx) + m[y0][:, x1] * wx
    bottom = m[y1][:, x0] * (1 - wx) + m[y1][:, x1] * wx
    out: np.ndarray = (top * (1 - wy) + bottom * wy).astype(np.float32)
    return out


def colourise(values: np.ndarray) -> np.ndarray:
    """0..1 values as ``uint8 [..., 3]`` colours, cold (dark blue) to hot (red)."""
    pos = np.clip(values, 0.0, 1.0) * (len(ANCHORS) - 1)
    low = np.minimum(pos.astype(np.int64), len(ANCHORS) - 2)
    frac = (pos - low)[..., None]
    rgb = ANCHORS[low] * (1 - frac) + ANCHORS[low + 1] * frac
    out: np.ndarray = rgb.astype(np.uint8)
    return out


def overlay_opacity(values: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Per-pixel opacity of the overlay: hotter parts more opaque (square-root curve, so
    the middle of the range stays visible)."""
    out: np.ndarray = (alpha * np.clip(values, 0.0, 1.0) ** 0.5).astype(np.float32)
    return out


@dataclass(frozen=True)
class HeatMap:
    """Where a model looked in one image, as the engine sends it to the window.

    Attributes:
        path: the image.
        grid: ``[h, w]`` float32 in 0..1 over the backbone's last feature grid, row 0
            at the top of the image; cells spread evenly over it (``explain.Grid.even``).
        class_name: the class explained (the model's top class).
        probability: the model's probability of that class.
        error: why there is no map (the file could not be read), else None.
    """

    path: Path
    grid: np.ndarray
    class_name: str = ""
    probability: float = 0.0
    error: str | None = None
