"""Heat maps of what a model looked at, fetched from the engine and drawn over pictures.

The engine computes each map (Grad-CAM, ``core.explain``) as a small grid, 7 x 7 cells
for MobileNetV2 at 224 px; the window keeps the grids per model and image, stretches them
over the picture shown (the same interpolation, colours and opacity as the PNGs of
``tlgui predict --explain``, from ``core.heatmap``) and blends them with QPainter. Views
ask ``HeatmapCache.get`` while painting; a miss is queued, fetched in batches by one
job at a time, and announced by ``ready(path)``.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QRect, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap

from tlgui.core.heatmap import Grid, HeatMap, colourise, overlay_opacity, upsample
from tlgui.gui import jobs
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.gui.engine_host import EngineHost

log = logging.getLogger(__name__)
BATCH = 32
# The map is stretched in numpy to at most this many pixels a side (its colours are
# worked out there), then Qt scales that smoothly to the picture.
DETAIL = 96


@dataclass(frozen=True)
class HeatSource:
    """The model whose heat maps are wanted.

    Attributes:
        key: names the model in the cache (a run folder, a predictor's id).
        model: how the engine's ``explain`` call names it.
        label: the model in words, for tooltips.
    """

    key: str
    model: tuple[tuple[str, str], ...]
    label: str = ""

    @classmethod
    def of_run(cls, run: Path) -> HeatSource:
        """The session's trained model, saved in ``run``."""
        return cls(f"run:{run}", (("run", str(run)),), f"the model of run {run.name}")

    @classmethod
    def of_predictor(cls, predictor_id: str, path: Path, mirror: bool = False) -> HeatSource:
        """A model loaded on the Predict tab (``mirror``: loaded with mirror averaging, so
        that a new engine loads it again the same way)."""
        return cls(f"predictor:{predictor_id}",
                   (("predictor", predictor_id), ("path", str(path)),
                    ("mirror", "yes" if mirror else "")), path.name)


def overlay_pixmap(base: QPixmap, heat: HeatMap) -> QPixmap:
    """``base`` with the heat map laid over it, hotter parts more opaque."""
    grid = heat.grid
    if base.isNull() or grid.ndim != 2 or not grid.size:
        return base
    rows, cols = grid.shape
    w = max(1, min(base.width(), DETAIL))
    h = max(1, min(base.height(), DETAIL))
    values = upsample(grid, Grid.even(1000, rows, cols), w, h)
    rgba = np.ascontiguousarray(np.dstack(
        [colourise(values), (overlay_opacity(values) * 255 + 0.5).astype(np.uint8)]))
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    out = QPixmap(base)
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.drawImage(QRect(0, 0, base.width(), base.height()), image)
    painter.end()
    return out


class HeatmapCache(QObject):
    """Heat maps by model and image, fetched from the engine in the background."""

    ready = Signal(str)

    def __init__(self, engine: EngineHost, capacity: int = 3000,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.capacity = capacity
        self._maps: OrderedDict[tuple[str, str], HeatMap] = OrderedDict()
        self._queued: OrderedDict[str, tuple[HeatSource, list[str]]] = OrderedDict()
        self._asked: set[tuple[str, str]] = set()
        self.job: Job | None = None
        self._stopped = False

    def get(self, source: HeatSource, path: Path | str) -> HeatMap | None:
        """The map if fetched; otherwise queues it and returns None."""
        key = (source.key, str(path))
        heat = self._maps.get(key)
        if heat is not None:
            self._maps.move_to_end(key)
            return heat
        if key not in self._asked and not self._stopped:
            self._asked.add(key)
            self._queued.setdefault(source.key, (source, []))[1].append(str(path))
            self._start_next()
        return None

    def busy(self) -> bool:
        """True while maps are being fetched or wait to be."""
        return bool(self._queued) or (self.job is not None and self.job.is_running())

    def _start_next(self) -> None:
        if self._stopped or not self._queued or (self.job is not None
                                                 and self.job.is_running()):
            return
        key, (source, paths) = next(iter(self._queued.items()))
        batch, rest = paths[:BATCH], paths[BATCH:]
        if rest:
            self._queued[key] = (source, rest)
        else:
            del self._queued[key]
        self.job = start_job(
            "heat-maps", functools.partial(jobs.explain, self.engine, dict(source.model),
                                           [Path(p) for p in batch]),
            on_success=lambda maps: self._store(source, maps),
            on_failure=lambda exc: self._failed(source, batch, exc),
            on_cancel=lambda: self._forget(source, batch),
            on_finish=self._finished)

    def _finished(self) -> None:
        self.job = None
        self._start_next()

    def _store(self, source: HeatSource, maps: list[HeatMap]) -> None:
        for heat in maps:
            self._maps[(source.key, str(heat.path))] = heat
            self._asked.discard((source.key, str(heat.path)))
            self.ready.emit(str(heat.path))
        while len(self._maps) > self.capacity:
            self._maps.popitem(last=False)

    def _failed(self, source: HeatSource, paths: list[str], exc: BaseException) -> None:
        # Shown on each picture as "no heat map" with the reason, never retried in a loop.
        log.info("no heat maps for %d images: %s", len(paths), exc)
        self._store(source, [HeatMap(Path(p), np.zeros((0, 0), np.float32), error=str(exc))
                             for p in paths])

    def _forget(self, source: HeatSource, paths: list[str]) -> None:
        for p in paths:
            self._asked.discard((source.key, p))

    def stop(self) -> None:
        """Stops fetching (the window closes)."""
        self._stopped = True
        self._queued.clear()
        if self.job is not None and self.job.is_running():
            self.job.cancel()
            self.job.wait()


def draw_heat(painter: QPainter, cache: HeatmapCache | None, source: HeatSource | None,
              path: Path | str, box: QRect, base: QPixmap) -> None:
    """Draws ``base`` fitted in ``box``, with the heat map over it when one is fetched
    (``source`` None: no map wanted)."""
    if base.isNull():
        return
    scaled = base.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    heat = cache.get(source, path) if cache is not None and source is not None else None
    if heat is not None and heat.error is None:
        scaled = overlay_pixmap(scaled, heat)
    painter.drawPixmap(box.x() + (box.width() - scaled.width()) // 2,
                       box.y() + (box.height() - scaled.height()) // 2, scaled)
