"""The Predict tab: drop images or folders, see the top 3 classes per image, save a CSV."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QDragEnterEvent, QDropEvent, QPainter
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.events import StageProgress
from tlgui.gui import jobs
from tlgui.gui.icons import icon
from tlgui.gui.thumbnails import ThumbnailCache
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.gui.engine_host import EngineHost

log = logging.getLogger(__name__)
CARD = QSize(340, 112)
PREDICTION_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


def local_paths(event: QDropEvent | QDragEnterEvent) -> list[Path]:
    """The local files and folders carried by a drag."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


class PredictionDelegate(QStyledItemDelegate):
    """A card: thumbnail, file name and the top classes with confidence bars."""

    def __init__(self, cache: ThumbnailCache, parent: QWidget) -> None:
        super().__init__(parent)
        self.cache = cache

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        pred = index.data(PREDICTION_ROLE)
        rect: QRect = option.rect.adjusted(3, 3, -3, -3)  # type: ignore[attr-defined]
        painter.save()
        selected = option.state & QStyle.StateFlag.State_Selected  # type: ignore[attr-defined]
        painter.fillRect(rect, QColor("#dbe8f7") if selected else QColor("#f7f7f7"))
        painter.setPen(QColor("#cccccc"))
        painter.drawRect(rect)
        side = rect.height() - 8
        thumb = QRect(rect.x() + 4, rect.y() + 4, side, side)
        pix = self.cache.get(pred.path)
        if pix is not None and not pix.isNull():
            scaled = pix.scaled(thumb.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                Qt.TransformationMode.SmoothTransformation)
            painter.drawPixmap(thumb.x() + (side - scaled.width()) // 2,
                               thumb.y() + (side - scaled.height()) // 2, scaled)
        else:
            painter.fillRect(thumb, QColor("#e4e4e4"))
        x = thumb.right() + 8
        width = rect.right() - x - 4
        fm = painter.fontMetrics()
        painter.setPen(QColor("#222222"))
        name = fm.elidedText(Path(pred.path).name, Qt.TextElideMode.ElideMiddle, width)
        painter.drawText(QRect(x, rect.y() + 4, width, fm.height()), 0, name)
        y = rect.y() + 8 + fm.height()
        if pred.error:
            painter.setPen(QColor("#a00000"))
            painter.drawText(QRect(x, y, width, rect.bottom() - y), Qt.TextFlag.TextWordWrap,
                             str(pred.error))
            painter.restore()
            return
        label_w = int(width * 0.45)
        for rank, (cls, prob) in enumerate(pred.top[:3]):
            line = QRect(x, y, width, fm.height() + 4)
            painter.setPen(QColor("#222222") if rank == 0 else QColor("#555555"))
            font = painter.font()
            font.setBold(rank == 0)
            painter.setFont(font)
            painter.drawText(QRect(x, y, label_w, line.height()), Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(str(cls), Qt.TextElideMode.ElideRight, label_w))
            bar = QRect(x + label_w + 4, y + 3, width - label_w - 48, line.height() - 6)
            painter.fillRect(bar, QColor("#e6e6e6"))
            filled = QRect(bar.x(), bar.y(), int(bar.width() * float(prob)), bar.height())
            painter.fillRect(filled, QColor("#2e7d32") if rank == 0 else QColor("#90a4ae"))
            painter.drawText(QRect(bar.right() + 4, y, 44, line.height()),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             f"{float(prob):.0%}")
            y += line.height() + 2
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        return CARD


class PredictPanel(QWidget):
    """Classifies dropped images with a loaded model."""

    status_message = Signal(str)
    error = Signal(str, object)

    def __init__(self, thumbnails: ThumbnailCache, engine: EngineHost,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.engine = engine
        self.predictor: jobs.PredictorInfo | None = None
        self.model_path: Path | None = None
        self.trained_model: Path | None = None
        self.predictions: list[Any] = []
        self.job: Job | None = None
        self._pending: list[Path] = []
        self._pending_model: Path | None = None
        self.closing = False
        self.setAcceptDrops(True)

        self.model_label = QLabel("No model loaded: drop an exported model here or open one.")
        self.model_label.setWordWrap(True)
        open_button = QPushButton(icon("open"), "Open model…")
        open_button.clicked.connect(self.choose_model)
        self.trained_button = QPushButton(icon("train"), "Use the model just trained")
        self.trained_button.clicked.connect(self.use_trained)
        self.trained_button.setEnabled(False)
        self.add_button = QPushButton(icon("predict"), "Add images…")
        self.add_button.clicked.connect(self.choose_images)
        self.csv_button = QPushButton(icon("csv"), "Export table as CSV…")
        self.csv_button.clicked.connect(self.choose_csv)
        self.csv_button.setEnabled(False)
        self.clear_button = QPushButton(icon("clear"), "Clear")
        self.clear_button.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        for b in (open_button, self.trained_button, self.add_button, self.csv_button,
                  self.clear_button):
            top.addWidget(b)
        self.hint = QLabel("<h3>Drop images or folders of images here</h3>"
                           "<p>Each image gets the model's three most likely classes.</p>")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setGridSize(CARD + QSize(6, 6))
        self.grid.setSpacing(4)
        self.grid.setAcceptDrops(False)
        self.grid.setDragEnabled(False)
        self.grid.setItemDelegate(PredictionDelegate(thumbnails, self))
        self.grid.itemActivated.connect(
            lambda item: QDesktopServices.openUrl(
                QUrl.fromLocalFile(str(item.data(PREDICTION_ROLE).path))))
        self.grid.setVisible(False)
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addWidget(self.progress)
        v.addWidget(self.hint, 1)
        v.addWidget(self.grid, 1)
        thumbnails.ready.connect(lambda _key: self.grid.viewport().update())

    # -- drops --------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.handle_paths(paths)

    def handle_paths(self, paths: Sequence[Path]) -> None:
        """A model among them is loaded; images and folders are classified."""
        models = [p for p in paths if jobs.is_model_path(p)]
        images = [p for p in paths if p not in models]
        if models:
            self.load_model(models[0])
        if images:
            self.predict(images)

    # -- model --------------------------------------------------------------------
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open an exported model", "", "Keras models (*.keras);;All files (*)")
        if path:
            self.load_model(Path(path))

    def set_trained_model(self, path: Path | None) -> None:
        """The model file of the latest training run (offered, loaded if none is)."""
        self.trained_model = path
        self.trained_button.setEnabled(path is not None)
        if path is not None and self.predictor is None and not self._busy():
            self.load_model(path)

    def use_trained(self) -> None:
        if self.trained_model is not None:
            self.load_model(self.trained_model)

    def _busy(self) -> bool:
        return self.job is not None and self.job.is_running()

    def load_model(self, path: Path) -> None:
        if self.closing:
            return
        if self._busy():
            self._pending_model = path  # loaded as soon as the current work ends
            return
        self._start_progress(f"Loading {path.name}…")
        self.job = start_job("load-model", functools.partial(jobs.load_predictor, self.engine,
                                                             path),
                             on_success=lambda p: self._on_loaded(path, p),
                             on_failure=self._on_failed, on_finish=self._on_finish)

    def _on_loaded(self, path: Path, predictor: jobs.PredictorInfo) -> None:
        self.predictor = predictor
        self.model_path = path
        names = list(predictor.class_names)
        shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
        self.model_label.setText(f"<b>Model:</b> {path.name} · {len(names)} classes: {shown}")
        self.model_label.setToolTip(str(path))
        self.status_message.emit(f"Loaded {path}")

    # -- prediction ---------------------------------------------------------------
    def choose_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Classify images", "", "Images (*.jpg *.jpeg *.png *.bmp *.gif *.webp *.tif "
            "*.tiff);;All files (*)")
        if files:
            self.predict([Path(f) for f in files])

    def predict(self, paths: Sequence[Path]) -> None:
        if self.closing:
            return
        if self._busy():
            self._pending += list(paths)
            return
        if self.predictor is None:
            self._pending += list(paths)
            self.status_message.emit("Load a model first: drop an exported model here or use "
                                     "the model just trained.")
            return
        self._start_progress("Classifying…")
        self.job = start_job("predict", functools.partial(jobs.predict, self.engine,
                                                          self.predictor, list(paths)),
                             on_progress=self._on_progress, on_success=self._on_predicted,
                             on_failure=self._on_failed, on_finish=self._on_finish)

    def _on_predicted(self, predictions: list[Any]) -> None:
        self.predictions += predictions
        for pred in predictions:
            item = QListWidgetItem()
            item.setData(PREDICTION_ROLE, pred)
            item.setSizeHint(CARD)
            top = ", ".join(f"{c} {float(p):.0%}" for c, p in pred.top[:3])
            item.setToolTip(f"{pred.path}\n{pred.error or top}")
            self.grid.addItem(item)
        self.hint.setVisible(False)
        self.grid.setVisible(True)
        self.csv_button.setEnabled(bool(self.predictions))
        self.status_message.emit(f"Classified {len(predictions)} image(s).")

    def _on_progress(self, event: object) -> None:
        if isinstance(event, StageProgress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)

    def _on_failed(self, exc: BaseException) -> None:
        self.error.emit("Prediction failed", exc)

    def _on_finish(self) -> None:
        self.progress.setVisible(False)
        self.job = None
        if self._pending_model is not None:
            path, self._pending_model = self._pending_model, None
            self.load_model(path)
        elif self._pending and self.predictor is not None:
            pending, self._pending = self._pending, []
            self.predict(pending)

    def _start_progress(self, text: str) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status_message.emit(text)

    # -- table --------------------------------------------------------------------
    def choose_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the predictions", "predictions.csv",
                                              "CSV table (*.csv)")
        if path:
            self.write_csv(Path(path))

    def write_csv(self, path: Path) -> None:
        from tlgui.core.prediction import write_csv

        write_csv(self.predictions, path)
        self.status_message.emit(f"Wrote {path}")

    def clear(self) -> None:
        self.predictions = []
        self.grid.clear()
        self.grid.setVisible(False)
        self.hint.setVisible(True)
        self.csv_button.setEnabled(False)
