"""The Predict tab: drop images or folders, see the top 3 classes per image, save a CSV,
sort copies into class folders.

Every dropped item shows as a card at once (``prediction_cards``), waiting while no model
is loaded; a folder of class folders is offered as a dataset first.
"""

from __future__ import annotations

import functools
import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from tlgui.core import sorting
from tlgui.core.events import StageProgress
from tlgui.core.folder_probe import looks_like_dataset
from tlgui.core.prediction import Prediction
from tlgui.gui import dialogs, jobs
from tlgui.gui.heatmaps import HeatSource
from tlgui.gui.icons import icon
from tlgui.gui.predict_output import PredictOutput
from tlgui.gui.prediction_cards import (
    CARD_ROLE,
    RESULT,
    CardGrid,
    CardModel,
    counts_text,
    summary_text,
)
from tlgui.gui.settings import app_settings, set_unsure_threshold, unsure_threshold
from tlgui.gui.thumbnails import ThumbnailCache
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.gui.engine_host import EngineHost

log = logging.getLogger(__name__)


def local_paths(event: QDropEvent | QDragEnterEvent) -> list[Path]:
    """The local files and folders carried by a drag."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


def _empty_inputs(paths: Sequence[Path], predictions: Sequence[Prediction]) -> list[Path]:
    """The dropped folders no file was found in."""
    found = [str(p.path) for p in predictions]
    return [p for p in paths if p.is_dir()
            and not any(f.startswith(str(p) + os.sep) for f in found)]


class PredictPanel(QWidget):
    """Classifies dropped images with a loaded model.

    Signals:
        status_message(str): a line for the status bar.
        error(str, object): a title and the exception to show.
        dataset_offered(Path): the user chose to open a dropped folder as the dataset.
        label_requested(list, object): Label these… with the predictions and the
            ``PredictorInfo`` that made them.
    """

    status_message = Signal(str)
    error = Signal(str, object)
    dataset_offered = Signal(Path)
    label_requested = Signal(object, object)

    def __init__(self, thumbnails: ThumbnailCache, engine: EngineHost,
                 settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.engine = engine
        self.settings = settings or app_settings()
        self.predictor: jobs.PredictorInfo | None = None
        self.model_path: Path | None = None
        self.trained_model: Path | None = None
        self.dataset_root: Path | None = None
        self.job: Job | None = None
        self.output = PredictOutput(self)
        self.output.status_message.connect(self.status_message)
        self.output.error.connect(self.error)
        self.output.finished.connect(self._refresh)
        self.offer_box: QMessageBox | None = None
        self._pending_model: Path | None = None
        self._loading: Path | None = None  # the model file a running job loads
        self._inputs: list[Path] = []
        self._generation = 0
        self.closing = False
        self.setAcceptDrops(True)

        self.model_label = QLabel("No model loaded: drop an exported model here or open one.")
        self.model_label.setWordWrap(True)
        open_button = QPushButton(icon("open"), "Open model…")
        open_button.clicked.connect(self.choose_model)
        self.trained_button = QPushButton(icon("train"), "Use the model just trained")
        self.trained_button.clicked.connect(self.use_trained)
        self.trained_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        top.addWidget(open_button)

        self.add_button = QPushButton(icon("predict"), "Add images…")
        self.add_button.clicked.connect(self.choose_images)
        self.threshold_box = QSpinBox()
        self.threshold_box.setObjectName("unsureThreshold")
        self.threshold_box.setRange(0, 100)
        self.threshold_box.setSuffix(" %")
        self.threshold_box.setValue(unsure_threshold(self.settings))
        tip = ("A prediction whose most likely class is below this probability is shown as "
               "unsure, marked in the CSV and copied into _unsure when sorting.")
        self.threshold_box.setToolTip(tip)
        threshold_label = QLabel("Unsure below")
        threshold_label.setToolTip(tip)
        threshold_label.setBuddy(self.threshold_box)
        self.threshold_box.valueChanged.connect(self._threshold_changed)
        self.csv_button = QPushButton(icon("csv"), "Export table as CSV…")
        self.csv_button.clicked.connect(self.choose_csv)
        self.sort_button = QPushButton(icon("open"), "Sort into folders…")
        self.sort_button.setToolTip("Copy (never move) the classified images into one folder "
                                    f"per class, and the unsure ones into {sorting.UNSURE_FOLDER}.")
        self.sort_button.clicked.connect(self.choose_sort_destination)
        self.label_button = QPushButton(icon("audit"), "Label these…")
        self.label_button.setToolTip("Confirm or correct the model's class of each image, "
                                     "least sure first, with the keyboard: they join the "
                                     "open dataset (your folders change only with Apply to "
                                     "folders).")
        self.label_button.clicked.connect(
            lambda: self.label_requested.emit(self.predictions, self.predictor))
        self.heat_box = QCheckBox("Show what the model looked at")
        self.heat_box.setToolTip("Lay a heat map over each picture: where the model found "
                                 "what decided its class (Grad-CAM).")
        self.heat_box.toggled.connect(self._heat_toggled)
        self.mirror_box = QCheckBox("Average with the mirror image")
        self.mirror_box.setToolTip(
            "Test-time augmentation: classify each image as it is and mirrored left to "
            "right, and average the two answers. Often a little more accurate; twice the "
            "time. The images shown are classified again.")
        self.mirror_box.toggled.connect(self._mirror_toggled)
        self.clear_button = QPushButton(icon("clear"), "Clear")
        self.clear_button.clicked.connect(self.clear)
        self.counts_label = QLabel()
        self.counts_label.setObjectName("predictCounts")
        tools = QHBoxLayout()
        tools.addWidget(self.add_button)
        tools.addWidget(self.counts_label, 1)
        tools.addWidget(threshold_label)
        tools.addWidget(self.threshold_box)
        for b in (self.label_button, self.csv_button, self.sort_button, self.clear_button):
            tools.addWidget(b)

        self.hint = QLabel("<h3>Drop images or folders of images here</h3>"
                           "<p>Each image gets the model's three most likely classes. "
                           "Ctrl+V pastes a picture or copied files.</p>")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cards = CardModel()
        self.cards.threshold = self.threshold_box.value() / 100
        self.grid = CardGrid(self.cards, thumbnails)
        self.grid.activated.connect(self._open_card)
        top.addWidget(self.trained_button)
        top.addWidget(self.heat_box)
        top.addWidget(self.mirror_box)
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addLayout(tools)
        v.addWidget(self.progress)
        v.addWidget(self.hint, 1)
        v.addWidget(self.grid, 1)
        thumbnails.ready.connect(lambda _key: self.grid.viewport().update())
        self._refresh()

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
        """A model among them is loaded; a folder of class folders is offered as a
        dataset; other images and folders are classified."""
        models = [p for p in paths if jobs.is_model_path(p)]
        rest = [p for p in paths if p not in models]
        datasets = [p for p in rest if looks_like_dataset(p)]
        images = [p for p in rest if p not in datasets]
        if models:
            self.load_model(models[0])
        if images:
            self.predict(images)
        if datasets:
            self.offer_dataset(datasets)

    def offer_dataset(self, folders: Sequence[Path]) -> QMessageBox:
        """Asks (without blocking) whether class folders are to train on or to classify."""
        self.offer_box = dialogs.offer_dataset(
            self, folders, lambda: self.dataset_offered.emit(folders[0]),
            lambda: self.predict(list(folders)))
        return self.offer_box

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
        self._refresh()
        if path is not None and self.predictor is None and not self._busy():
            self.load_model(path)

    def set_dataset_root(self, root: Path | None) -> None:
        """The open dataset: sorting never copies into it."""
        self.dataset_root = root

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
            self._refresh()
            return
        self._start_progress(f"Loading {path.name}…")
        self._loading = path
        self.job = start_job("load-model", functools.partial(
                                 jobs.load_predictor, self.engine, path,
                                 mirror=self.mirror_box.isChecked()),
                             on_success=lambda p: self._on_loaded(path, p),
                             on_failure=lambda exc: self.error.emit("Cannot load the model",
                                                                    exc),
                             on_finish=self._on_finish)
        self._refresh()

    def _on_loaded(self, path: Path, predictor: jobs.PredictorInfo) -> None:
        self.predictor = predictor
        self.model_path = path
        self._heat_toggled(self.heat_box.isChecked())
        names = list(predictor.class_names)
        shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
        mirror = " · averaged with the mirror image" if predictor.mirror else ""
        self.model_label.setText(f"<b>Model:</b> {html.escape(path.name)} · {len(names)} "
                                 f"classes: {html.escape(shown)}{mirror}")
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
        """Shows a card per item at once, and classifies them when a model is there."""
        if self.closing:
            return
        added = self.cards.add_waiting(paths)
        self._inputs += [p for p in added if p not in self._inputs]
        if self.predictor is None and not self._busy():
            self.status_message.emit("Load a model first: drop an exported model here or use "
                                     "the model just trained. The images wait on their cards.")
        self._start_next()

    def _start_next(self) -> None:
        if self.closing or self._busy() or self._pending_model is not None:
            self._refresh()
            return
        paths = self.cards.waiting_paths()
        if self.predictor is None or not paths:
            self._refresh()
            return
        self.cards.mark_classifying(paths)
        self._start_progress("Classifying…")
        gen = self._generation
        self.job = start_job("predict", functools.partial(jobs.predict, self.engine,
                                                          self.predictor, paths),
                             on_progress=self._on_progress,
                             on_success=lambda rows: self._on_predicted(gen, paths, rows),
                             on_failure=lambda exc: self._on_failed(gen, paths, exc),
                             on_finish=self._on_finish)
        self._refresh()

    def _on_predicted(self, gen: int, paths: list[Path], rows: list[Prediction]) -> None:
        if gen != self._generation:  # cleared meanwhile
            return
        empty = _empty_inputs(paths, rows)
        self.cards.finish(paths, rows, {p: "No image files in this folder." for p in empty})
        self.status_message.emit(summary_text(rows, self.cards.threshold, empty))

    def _on_failed(self, gen: int, paths: list[Path], exc: BaseException) -> None:
        if gen != self._generation:
            return
        from tlgui.gui.dialogs import error_text

        self.cards.fail(paths, error_text(exc))
        self.error.emit("Prediction failed", exc)

    def _on_progress(self, event: object) -> None:
        if isinstance(event, StageProgress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)

    def _on_finish(self) -> None:
        self.progress.setVisible(False)
        self.job = None
        self._loading = None
        if self._pending_model is not None and not self.closing:
            path, self._pending_model = self._pending_model, None
            self.load_model(path)
        else:
            self._start_next()

    def _start_progress(self, text: str) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status_message.emit(text)

    def _open_card(self, index: Any) -> None:
        card = index.data(CARD_ROLE)
        if card is not None and card.state == RESULT:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(card.path)))

    def _threshold_changed(self, percent: int) -> None:
        set_unsure_threshold(self.settings, percent)
        self.cards.set_threshold(percent / 100)
        self._refresh()

    def _refresh(self) -> None:
        """Buttons, counts and what waiting cards say, after any change."""
        loading = self._pending_model is not None or (
            self.job is not None and self.job.name == "load-model" and self._busy())
        self.cards.set_waiting_text(
            "Waiting for the model to load…" if loading else
            "Waiting for a model: drop or open one"
            + (", or use the model just trained" if self.trained_model else "")
            if self.predictor is None else "Waiting…")
        has_cards = self.cards.rowCount() > 0
        has_results = bool(self.cards.predictions())
        self.hint.setVisible(not has_cards)
        self.grid.setVisible(has_cards)
        self.csv_button.setEnabled(has_results)
        self.label_button.setEnabled(has_results)
        self.sort_button.setEnabled(has_results and not self.output.sorting())
        self.clear_button.setEnabled(has_cards)
        self.counts_label.setText(counts_text(self.cards))

    def _mirror_toggled(self, _on: bool) -> None:
        # The model the user chose last: waiting, loading, or loaded.
        target = self._pending_model or self._loading or self.model_path
        if target is None:
            return  # the next model loaded follows the box
        inputs = list(self._inputs)
        self.clear()  # the answers shown came from the model without (or with) the mirror
        self.load_model(target)  # after a load in progress, loaded again with the box's state
        if inputs:
            self.predict(inputs)  # they wait on their cards until the model is loaded

    def _heat_toggled(self, on: bool) -> None:
        """Cards show heat maps of the loaded model while the box is ticked."""
        p = self.predictor
        self.grid.cards.heat_source = HeatSource.of_predictor(p.id, p.path, p.mirror) \
            if on and p is not None else None
        self.grid.viewport().update()

    # -- results --------------------------------------------------------------------
    @property
    def predictions(self) -> list[Prediction]:
        """The results on the cards, in card order."""
        return self.cards.predictions()

    @property
    def threshold(self) -> float:
        """The unsure threshold as a probability (0-1)."""
        return self.threshold_box.value() / 100

    def choose_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the predictions", "predictions.csv",
                                              "CSV table (*.csv)")
        if path:
            self.write_csv(Path(path))

    def write_csv(self, path: Path) -> None:
        """Writes the results, with an ``unsure`` column for the current threshold."""
        protected = [*self._inputs, *([self.dataset_root] if self.dataset_root else [])]
        self.output.write_csv(self.predictions, path, self.threshold, protected)

    def choose_sort_destination(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Copy the images into class folders in")
        if folder:
            self.sort_into(Path(folder))

    def sort_into(self, dest: Path) -> Job | None:
        """Copies the classified images into ``dest/<class>/`` and ``dest/_unsure/`` in a
        worker; refuses a destination overlapping an input folder or the dataset.

        Returns:
            The copying job, or None when the destination was refused.
        """
        protected = [*self._inputs, *([self.dataset_root] if self.dataset_root else [])]
        job = self.output.sort_into(self.predictions, dest, self.threshold, protected)
        self._refresh()
        return job

    def clear(self) -> None:
        """Removes every card, waiting ones included; a running classification stops."""
        self._generation += 1
        if self.job is not None and self.job.name == "predict" and self._busy():
            self.job.cancel()
        self.cards.clear()
        self._inputs = []
        self._refresh()
