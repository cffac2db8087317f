"""What the review needs from the rest of the window, in one place.

``ReviewController`` holds the pieces the Audit tab, the Evaluate tab's mistakes and the
Predict tab's labelling share: the correction store (the session's), the large-picture
and heat-map caches, the folder apply/undo, and the engine calls that find the nearest
images of a class for any image. It opens the review dialogs of the Evaluate and Predict
tabs; the Audit tab embeds the same ``ReviewWidget``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from tlgui.gui import jobs
from tlgui.gui.folder_apply import CorrectionsBar, FolderApply
from tlgui.gui.heatmaps import HeatmapCache, HeatSource
from tlgui.gui.review_items import (
    ReviewItem,
    compared_classes,
    from_misses,
    from_predictions,
    with_nearest,
)
from tlgui.gui.review_widget import ReviewWidget
from tlgui.gui.thumbnails import ThumbnailCache
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.core.audit_findings import Nearest
    from tlgui.core.metrics import Evaluation
    from tlgui.core.prediction import Prediction
    from tlgui.gui.engine_host import EngineHost
    from tlgui.gui.session import Session

log = logging.getLogger(__name__)
LARGE_SIDE = 720
NO_MODEL = "Train a model first (or open a run): heat maps show what it looked at."


class ReviewDialog(QDialog):
    """A review in its own window (the Evaluate tab's mistakes, new images to label)."""

    def __init__(self, review: ReviewWidget, title: str, intro: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewDialog")
        self.setWindowTitle(title)
        self.review = review
        self.status = QLabel(intro)
        self.status.setWordWrap(True)
        v = QVBoxLayout(self)
        v.addWidget(self.status)
        v.addWidget(review, 1)
        self.resize(1100, 760)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)


class ReviewController(QObject):
    """Shared state and engine calls of every review.

    Signals:
        status_message(str), error(str, object): for the window.
    """

    status_message = Signal(str)
    error = Signal(str, object)

    def __init__(self, session: Session, engine: EngineHost, thumbnails: ThumbnailCache,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.engine = engine
        self.store = session.corrections
        self.thumbnails = thumbnails
        self.large = ThumbnailCache(size=LARGE_SIDE, capacity=40, parent=self)
        self.heat = HeatmapCache(engine, parent=self)
        self.folders = FolderApply(session, self)
        self.folders.status_message.connect(self.status_message)
        self.folders.error.connect(self.error)
        self.dialog: ReviewDialog | None = None
        self.nearest_job: Job | None = None

    # -- pieces -------------------------------------------------------------------------
    def review_widget(self) -> ReviewWidget:
        """A new review widget on the shared store and caches."""
        return ReviewWidget(self.store, self.thumbnails, self.large, self.heat)

    def corrections_bar(self) -> CorrectionsBar:
        """A new "n relabelled, …" bar with Apply to folders… and Undo last apply."""
        return CorrectionsBar(self.folders)

    def model_heat_source(self) -> tuple[HeatSource | None, str]:
        """The session's trained model as a heat-map source, or (None, why not)."""
        model = self.session.model
        if model is None or not model.trained or model.run is None:
            return None, NO_MODEL
        return HeatSource.of_run(model.run), ""

    def class_names(self) -> tuple[str, ...]:
        """The classes the number keys assign: the open dataset's, as corrected."""
        ds = self.session.dataset
        return ds.class_names if ds is not None else ()

    # -- nearest images -------------------------------------------------------------------
    def find_nearest(self, items: Sequence[ReviewItem],
                     done: Callable[[list[ReviewItem]], None]) -> Job | None:
        """Asks the engine for the nearest images of each item's classes; ``done`` gets
        the items with them. None when no dataset is open."""
        ref = self.session.dataset_ref()
        if ref is None or not items:
            return None
        if self.nearest_job is not None and self.nearest_job.is_running():
            self.nearest_job.cancel()
        queries = [(i.path, compared_classes(i)) for i in items]
        config = self.session.config_source()

        def found(per: list[tuple[Nearest, ...]]) -> None:
            done(with_nearest(items, {i.path: n for i, n in zip(items, per, strict=True)}))

        self.nearest_job = start_job(
            "nearest", functools.partial(jobs.neighbours, self.engine, ref, config, queries),
            on_progress=self._progress, on_success=found,
            on_failure=lambda exc: self.error.emit("Cannot find similar images", exc))
        return self.nearest_job

    def _progress(self, event: object) -> None:
        message = getattr(event, "message", "")
        if message and self.dialog is not None:
            done, total = getattr(event, "done", 0), getattr(event, "total", 0)
            self.dialog.status.setText(f"{message}" + (f" ({done}/{total})" if total else ""))

    # -- dialogs --------------------------------------------------------------------------
    def _open(self, items: list[ReviewItem], title: str, intro: str, index: int,
              source: tuple[HeatSource | None, str], parent: QWidget | None) -> ReviewDialog:
        if self.dialog is not None:
            self.dialog.close()
        review = self.review_widget()
        review.set_items(items, self.class_names(), index)
        review.set_heat_source(*source)
        dialog = ReviewDialog(review, title, intro, parent)
        dialog.destroyed.connect(functools.partial(self._closed, dialog))
        self.dialog = dialog
        dialog.show()
        review.setFocus()

        def got(found: list[ReviewItem]) -> None:
            if self.dialog is dialog:  # not closed (and deleted) meanwhile
                review.update_items(found)
                dialog.status.setText(intro)

        self.find_nearest(items, got)
        return dialog

    def _closed(self, dialog: ReviewDialog, *_args: object) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def review_misses(self, evaluation: Evaluation | None, index: int = 0,
                      parent: QWidget | None = None) -> ReviewDialog | None:
        """Reviews the Evaluate tab's mistakes, starting at ``index``."""
        if evaluation is None or not evaluation.misses:
            return None
        if self.session.dataset is None:
            self.status_message.emit("Open the dataset first.")
            return None
        return self._open(from_misses(evaluation), "Review the model's mistakes",
                          "Is the folder right, or the model? Number keys give the image a "
                          "class; nothing in your folders changes until Apply to folders.",
                          index, self.model_heat_source(), parent)

    def label_new(self, predictions: Sequence[Prediction],
                  predictor: jobs.PredictorInfo | None,
                  parent: QWidget | None = None) -> ReviewDialog | None:
        """Labels classified new images, the model's least sure first; confirmed ones join
        the dataset (through the correction list: their folder is never written to)."""
        ds = self.session.dataset
        if ds is None:
            self.status_message.emit("Open the dataset these images belong to first (Data "
                                     "tab): labelled images join it.")
            return None
        items = from_predictions(predictions, ds.root)
        if not items:
            self.status_message.emit("No classified image outside the dataset to label.")
            return None
        source = (HeatSource.of_predictor(predictor.id, predictor.path,
                                         predictor.mirror), "") \
            if predictor is not None else (None, "Load a model first.")
        return self._open(items, "Label new images",
                          "Least sure first. A number key (or Space for the model's "
                          "suggestion) adds the image to the dataset as that class; they "
                          "are copied into the class folders only with Apply to folders.",
                          0, source, parent)

    def stop(self) -> None:
        """Stops background work (the window closes)."""
        if self.dialog is not None:
            self.dialog.close()
        self.heat.stop()
        self.large.stop()
        if self.nearest_job is not None and self.nearest_job.is_running():
            self.nearest_job.cancel()
            self.nearest_job.wait()

