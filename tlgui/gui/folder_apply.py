"""Carrying label corrections out on the folders, only when asked, with an undo.

"Apply to folders…" lists the exact file moves (``core.folder_moves.plan_apply``) in a
dialog; only its Apply button moves anything (in a worker thread of the window: plain
file work, no Keras). "Undo last apply" replays the undo list. After either, the dataset
is scanned again. ``CorrectionsBar`` says how many corrections are pending, on the Data
and Audit tabs, with both buttons.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlgui.core.errors import TlguiError
from tlgui.core.folder_moves import ApplyPlan, apply_plan, has_undo, plan_apply, undo_last
from tlgui.core.pixel_store import PixelStore
from tlgui.core.wording import plural
from tlgui.gui.icons import icon
from tlgui.gui.workers import Job, start_job

if TYPE_CHECKING:
    from tlgui.gui.session import Session

log = logging.getLogger(__name__)
APPLY_TEXT = "Apply to folders…"
UNDO_TEXT = "Undo last apply"


class ApplyDialog(QDialog):
    """Shows every file operation of a plan; Apply carries them out, Cancel nothing."""

    def __init__(self, plan: ApplyPlan, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("applyDialog")
        self.setWindowTitle("Apply the corrections to your folders")
        self.plan = plan
        n = len(plan.moves)
        intro = QLabel(
            f"These {plural(n, 'file operation')} will change the folders of "
            f"<b>{plan.root}</b>. Excluded images go to a folder next to the dataset, "
            "added images are copied (never moved) from where they are, and no file is "
            "replaced. <b>Undo last apply</b> puts everything back.")
        intro.setWordWrap(True)
        self.moves = QPlainTextEdit("\n".join(plan.lines()))
        self.moves.setReadOnly(True)
        self.moves.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = self.buttons.addButton(f"Apply {plural(n, 'change')}",
                                                   QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        v = QVBoxLayout(self)
        v.addWidget(intro)
        v.addWidget(self.moves, 1)
        v.addWidget(self.buttons)
        self.resize(820, 420)


class FolderApply(QObject):
    """Applies the session's corrections to the dataset's folders and undoes that.

    Signals:
        status_message(str), error(str, object): for the window.
        state_changed(): an apply or undo started or ended.
    """

    status_message = Signal(str)
    error = Signal(str, object)
    state_changed = Signal()

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.job: Job | None = None
        self.dialog: ApplyDialog | None = None

    def running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def why_not(self) -> str:
        """Why Apply cannot start now ("" when it can)."""
        s = self.session
        if s.raw_dataset is None:
            return "Open a dataset first."
        if s.busy or self.running():
            return f"Wait: {s.busy or 'moving files'}…"
        return ""

    def can_undo(self) -> bool:
        root = self.session.raw_dataset.root if self.session.raw_dataset else None
        return root is not None and not self.session.busy and not self.running() \
            and has_undo(root)

    def ask(self, parent: QWidget | None = None) -> ApplyDialog | None:
        """Shows the moves the corrections need, to confirm (the dialog; None when there
        is nothing to move or it cannot start now)."""
        reason = self.why_not()
        if reason:
            self.status_message.emit(reason)
            return None
        s = self.session
        assert s.raw_dataset is not None and s.corrections.corrections is not None
        try:
            plan = plan_apply(s.raw_dataset, s.corrections.corrections)
        except TlguiError as exc:
            self.error.emit("Cannot apply the corrections", exc)
            return None
        if not plan.moves:
            self.status_message.emit("No file needs to move: there is no relabelled, "
                                     "excluded or added image.")
            return None
        self.dialog = ApplyDialog(plan, parent)
        self.dialog.accepted.connect(lambda: self.apply(plan))
        self.dialog.open()
        return self.dialog

    def apply(self, plan: ApplyPlan) -> Job | None:
        """Carries out a plan the user confirmed, in a worker."""
        if self.why_not():
            self.status_message.emit(self.why_not())
            return None
        self.status_message.emit(f"Moving {plural(len(plan.moves), 'file')}…")
        self.job = start_job("apply-folders", lambda report, cancel: apply_plan(plan,
                                                                                PixelStore()),
                             on_success=lambda record: self._done(
                                 f"Applied {plural(len(record.moves), 'change')} to your "
                                 "folders; Undo last apply puts them back."),
                             on_failure=lambda exc: self._failed("Applying failed", exc),
                             on_finish=self._rescan)
        self.state_changed.emit()
        return self.job

    def undo(self) -> Job | None:
        """Undoes the last apply, in a worker."""
        s = self.session
        if s.raw_dataset is None or not self.can_undo():
            return None
        root = s.raw_dataset.root
        self.job = start_job("undo-apply", lambda report, cancel: undo_last(root),
                             on_success=self._undone,
                             on_failure=lambda exc: self._failed("Undo failed", exc),
                             on_finish=self._rescan)
        self.state_changed.emit()
        return self.job

    def _undone(self, left: list[str] | None) -> None:
        if left:
            self.error.emit("Undo could not put everything back", TlguiError(
                "\n".join(left[:20]) + (f"\n… and {len(left) - 20} more" if len(left) > 20
                                        else "")))
        else:
            self._done("The last apply was undone; your folders are as they were.")

    def _done(self, text: str) -> None:
        self.status_message.emit(text)

    def _failed(self, title: str, exc: BaseException) -> None:
        self.error.emit(title, exc)

    def _rescan(self) -> None:
        self.job = None
        s = self.session
        s.corrections.reload()
        if s.raw_dataset is not None:
            root: Path = s.raw_dataset.root
            s.open_dataset(root, then=s.build_if_classes_changed)
        self.state_changed.emit()


class CorrectionsBar(QWidget):
    """"3 relabelled, 1 excluded: used by training; your folders are unchanged." with
    Apply to folders… and Undo last apply."""

    def __init__(self, folders: FolderApply, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folders = folders
        self.label = QLabel()
        self.label.setObjectName("pendingCorrections")
        self.label.setWordWrap(True)
        self.apply_button = QPushButton(icon("apply"), APPLY_TEXT)
        self.apply_button.setToolTip("Move the relabelled and excluded images and copy the "
                                     "added ones in your folders, after showing every move.")
        self.apply_button.clicked.connect(lambda: folders.ask(self.window()))
        self.undo_button = QPushButton(icon("undo"), UNDO_TEXT)
        self.undo_button.clicked.connect(folders.undo)
        h = QHBoxLayout(self)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.label, 1)
        h.addWidget(self.apply_button)
        h.addWidget(self.undo_button)
        store = folders.session.corrections
        store.changed.connect(self.refresh)
        folders.state_changed.connect(self.refresh)
        folders.session.busy_changed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_changed: object) -> None:
        """Says what is pending; Apply and Undo are enabled when they can run."""
        store = self.folders.session.corrections
        text = store.pending_text()
        self.label.setText(text or "No label corrections: your folders are used as they are.")
        self.apply_button.setEnabled(store.pending_moves() > 0 and not self.folders.why_not())
        undo = self.folders.can_undo()
        self.undo_button.setEnabled(undo)
        self.setVisible(bool(text) or undo)
