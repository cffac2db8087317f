"""Reviewing images one at a time, keyboard first: the Audit tab's findings, the Evaluate
tab's mistakes and new images to label all use this widget.

The image is shown large with its given and suggested class, the model's view, and the
images of both classes that look most like it. Number keys 1-9 assign the class of that
number (the list shows the numbers), X excludes (a new image: leaves it out), Space keeps
the label (a new image: takes the suggestion), Backspace forgets the decision, and the
arrow keys or J/K move between images. A decision is saved at once through the
``CorrectionStore`` (the dataset's folders never change) and the next image follows.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlgui.gui.corrections_store import CorrectionStore
from tlgui.gui.heatmaps import HeatmapCache, HeatSource
from tlgui.gui.review_items import ReviewItem, compared_classes
from tlgui.gui.review_pictures import ImageView, NearestStrip
from tlgui.gui.thumbnails import ThumbnailCache

HEAT_TEXT = "Show what the model looked at"
KEYS_TEXT = ("<b>1</b>–<b>9</b> class · <b>X</b> {x} · <b>Space</b> {space} · "
             "<b>←/→</b> or <b>J/K</b> move · <b>Backspace</b> undo")
NEXT_KEYS = (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_J)
PREVIOUS_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_K)
DECIDED_STYLE = "background: #e3f1e3; border: 1px solid #7cb87c; border-radius: 4px; padding: 4px;"
OPEN_STYLE = "background: #f3f3f3; border: 1px solid #cccccc; border-radius: 4px; padding: 4px;"


class ReviewWidget(QWidget):
    """One image at a time; decisions by keyboard (or by clicking a class).

    Signals:
        current_changed(int): the item shown now (its index in the items).
        decided(object): a decision was stored for this ``ReviewItem``.
    """

    current_changed = Signal(int)
    decided = Signal(object)

    def __init__(self, store: CorrectionStore, thumbnails: ThumbnailCache,
                 large: ThumbnailCache, heat: HeatmapCache | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.items: list[ReviewItem] = []
        self.classes: tuple[str, ...] = ()
        self.index = -1
        self.source: HeatSource | None = None
        self.last_decision = ""
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.position_label = QLabel()
        self.heat_box = QCheckBox(HEAT_TEXT)
        self.heat_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.heat_box.toggled.connect(lambda _on: self._show_current())
        top = QHBoxLayout()
        top.addWidget(self.position_label, 1)
        top.addWidget(self.heat_box)

        self.image = ImageView(large, heat)
        self.heat_label = QLabel()
        self.heat_label.setObjectName("heatCaption")
        self.heat_label.setStyleSheet("color: #555555;")
        self.heat_label.setWordWrap(True)
        if heat is not None:
            # Bound methods, never lambdas, on the window's long-lived caches: Qt drops
            # the connection when a closed review dialog deletes this widget.
            heat.ready.connect(self._on_heat_ready)
        self.title_label = QLabel()
        self.title_label.setWordWrap(True)
        self.decision_label = QLabel()
        self.decision_label.setObjectName("reviewDecision")
        self.class_list = QListWidget()
        self.class_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.class_list.setToolTip("Press a class's number, or click it, to give the image "
                                   "that class.")
        self.class_list.itemClicked.connect(
            lambda item: self.assign(item.data(Qt.ItemDataRole.UserRole)))
        self.keys_label = QLabel()
        self.keys_label.setWordWrap(True)
        self.keys_label.setStyleSheet("color: #555555;")
        side = QVBoxLayout()
        side.addWidget(self.title_label)
        side.addWidget(self.decision_label)
        side.addWidget(QLabel("Classes:"))
        side.addWidget(self.class_list, 1)
        side.addWidget(self.keys_label)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(280)
        picture = QVBoxLayout()
        picture.addWidget(self.image, 1)
        picture.addWidget(self.heat_label)
        middle = QHBoxLayout()
        middle.addLayout(picture, 1)
        middle.addWidget(side_widget)

        self.strips = [NearestStrip(thumbnails), NearestStrip(thumbnails)]
        self.last_label = QLabel()
        self.last_label.setStyleSheet("color: #555555;")
        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addLayout(middle, 1)
        for strip in self.strips:
            v.addWidget(strip)
        v.addWidget(self.last_label)
        store.changed.connect(self._show_decision)
        self._show_current()

    # -- contents -------------------------------------------------------------------------
    def set_items(self, items: Sequence[ReviewItem], classes: Sequence[str],
                  index: int = 0) -> None:
        """The images to review and the classes the number keys assign."""
        self.items = list(items)
        self.classes = tuple(classes)
        self.class_list.clear()
        for i, name in enumerate(self.classes):
            item = QListWidgetItem(f"{i + 1}   {name}" if i < 9 else f"     {name}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.class_list.addItem(item)
        self.index = min(max(index, 0), len(self.items) - 1)
        self._show_current()

    def update_items(self, items: Sequence[ReviewItem]) -> None:
        """The same images with more known about them (their nearest images)."""
        if [i.path for i in items] == [i.path for i in self.items]:
            self.items = list(items)
            self._show_current()

    def set_heat_source(self, source: HeatSource | None, why_not: str = "") -> None:
        """The model whose heat maps the checkbox shows (None: no model, say why)."""
        self.source = source
        self.heat_box.setEnabled(source is not None)
        self.heat_box.setToolTip(f"Heat maps of {source.label}" if source is not None
                                 else why_not)
        self._show_current()

    @property
    def current(self) -> ReviewItem | None:
        """The item shown."""
        return self.items[self.index] if 0 <= self.index < len(self.items) else None

    def go_to(self, index: int) -> None:
        """Shows the item at ``index`` (clamped)."""
        if not self.items:
            return
        index = min(max(index, 0), len(self.items) - 1)
        if index != self.index:
            self.index = index
            self._show_current()

    # -- decisions ------------------------------------------------------------------------
    def assign(self, class_name: str) -> None:
        """Gives the current image ``class_name`` (a new image joins the dataset as it)."""
        item = self.current
        if item is None:
            return
        ok = self.store.add(item.path, class_name) if item.new else \
            self.store.relabel(item.path, class_name)
        self._after(item, ok)

    def exclude(self) -> None:
        """Leaves the current image out of training (a new image: does not add it)."""
        item = self.current
        if item is not None:
            self._after(item, self.store.forget(item.path) if item.new
                        else self.store.exclude(item.path))

    def keep(self) -> None:
        """Keeps the label (a new image: takes the model's suggestion)."""
        item = self.current
        if item is None:
            return
        if item.new:
            if item.suggested in self.classes:
                self.assign(item.suggested)
            return
        self._after(item, self.store.keep(item.path))

    def forget(self) -> None:
        """Drops the decision about the current image."""
        item = self.current
        if item is not None and self.store.forget(item.path):
            self.last_decision = f"{item.path.name}: decision undone"
            self._show_current()

    def _after(self, item: ReviewItem, ok: bool) -> None:
        if not ok:
            return
        what = self.store.decision_text(item.path) or "left out"
        self.last_decision = f"Last: {item.path.name} {what}"
        self.decided.emit(item)
        if self.index < len(self.items) - 1:
            self.go_to(self.index + 1)
        else:
            self._show_current()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            n = key - Qt.Key.Key_1
            if n < len(self.classes):
                self.assign(self.classes[n])
        elif key == Qt.Key.Key_X:
            self.exclude()
        elif key == Qt.Key.Key_Space:
            self.keep()
        elif key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            self.forget()
        elif key in NEXT_KEYS:
            self.go_to(self.index + 1)
        elif key in PREVIOUS_KEYS:
            self.go_to(self.index - 1)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # -- display --------------------------------------------------------------------------
    def _show_current(self) -> None:
        item = self.current
        heat = self.source if self.heat_box.isChecked() else None
        self.image.show_path(item.path if item else None, heat)
        if item is None:
            self.position_label.setText("Nothing to review.")
            self.title_label.setText("")
            for strip in self.strips:
                strip.show_nearest(None, "")
                strip.setVisible(False)
            self._show_decision()
            return
        self.position_label.setText(f"<b>{self.index + 1}</b> of {len(self.items)} · "
                                    f"{html.escape(item.path.name)}")
        self.position_label.setToolTip(str(item.path))
        given = ("New image, not labelled yet" if item.new
                 else f"Given: <b>{html.escape(item.given)}</b>")
        suggested = f" → suggested: <b>{html.escape(item.suggested)}</b>" \
            if item.suggested else ""
        model = ", ".join(f"{html.escape(c)} {p:.0%}" for c, p in item.top)
        also = (f"<br>Same photo as: {html.escape(item.related.parent.name)}/"
                f"{html.escape(item.related.name)}") if item.related else ""
        self.title_label.setText(
            f"<b>{html.escape(item.title)}</b><br>{given}{suggested}"
            + (f"<br><small>{item.top_label}: {model}</small>" if model else "")
            + (f"<br><small>{html.escape(item.detail)}</small>" if item.detail else "")
            + f"<small>{also}</small>")
        self.keys_label.setText(KEYS_TEXT.format(
            x="leave out" if item.new else "exclude",
            space="take the suggestion" if item.new else "keep as is"))
        classes = compared_classes(item)
        for i, strip in enumerate(self.strips):
            strip.setVisible(i < len(classes))
            if i < len(classes):
                found = next((n for n in item.nearest if n.class_name == classes[i]), None)
                role = "given" if classes[i] == item.given else (
                    "suggested" if classes[i] == item.suggested else "the model's runner-up")
                strip.show_nearest(found if item.nearest else None,
                                   f"Most like it in {classes[i]} ({role}):")
        self._show_decision()
        self._show_heat_caption()
        self.current_changed.emit(self.index)

    def _on_heat_ready(self, path: str) -> None:
        item = self.current
        if item is not None and str(item.path) == path:
            self._show_heat_caption()

    def _show_heat_caption(self) -> None:
        heat = self.image.heat_map() if self.heat_box.isChecked() else None
        if not self.heat_box.isChecked():
            self.heat_label.setText("")
        elif heat is None:
            self.heat_label.setText("Computing the heat map…")
        elif heat.error is not None:
            self.heat_label.setText(f"No heat map: {heat.error}")
        else:
            self.heat_label.setText(
                f"Red: where the model found <b>{html.escape(heat.class_name)}</b> "
                f"({heat.probability:.0%}), its answer for this image; blue: what did not "
                "count (Grad-CAM).")

    def _show_decision(self) -> None:
        item = self.current
        text = self.store.decision_text(item.path) if item is not None else ""
        if item is None:
            self.decision_label.setText("")
        elif text:
            self.decision_label.setText(f"✔ Decided: {text}")
        else:
            self.decision_label.setText("Not decided yet" if not item.new
                                        else "Not labelled yet")
        self.decision_label.setStyleSheet(DECIDED_STYLE if text else OPEN_STYLE)
        self.last_label.setText(self.last_decision)
        for i in range(self.class_list.count()):
            entry = self.class_list.item(i)
            bold = item is not None and entry.data(Qt.ItemDataRole.UserRole) in (
                item.given, item.suggested)
            font = entry.font()
            font.setBold(bold)
            entry.setFont(font)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        super().mousePressEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(900, 640)
