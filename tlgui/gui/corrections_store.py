"""The open dataset's label corrections, as the window edits them.

Each decision (a class, exclude, keep, an added image) is saved at once to the dataset's
correction list in tlgui's data folder (``core.corrections``); nothing in the dataset
folder changes. The session applies the list to the scanned dataset, so the Data tab's
counts and the next training see the corrected labels, and every engine call that names
the dataset carries the list.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from tlgui.core.corrections import (
    Corrections,
    apply_corrections,
    load_corrections,
    relative_key,
    save_corrections,
)
from tlgui.core.dataset import Dataset
from tlgui.core.errors import TlguiError
from tlgui.core.wording import plural

log = logging.getLogger(__name__)


def fast_relative_key(path: Path, root: Path) -> str | None:
    """``relative_key`` for the paths a scan made (``root`` joined with names): a string
    prefix, about 20 times quicker on 100,000 files; any other path goes the long way."""
    text, prefix = str(path), os.path.join(str(root), "")
    if path.is_absolute() and text.startswith(prefix) and len(text) > len(prefix):
        return text[len(prefix):].replace(os.sep, "/")
    return relative_key(path, root)


class CorrectionStore(QObject):
    """The correction list of the dataset the window has open.

    Signals:
        changed(): a decision was made or the list was read again.
        error(str, object): a title and the exception to show (an unreadable list, a
            failed save).
    """

    changed = Signal()
    error = Signal(str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.corrections: Corrections | None = None
        # Each image's folder class by its key; built at the first relabel, not at every
        # scan (100,000 keys are work the window need not do before showing the data).
        self._folder_class: dict[str, str] | None = None
        self._raw: Dataset | None = None
        self._writable = True

    @property
    def root(self) -> Path | None:
        """The dataset folder the list belongs to."""
        return self.corrections.root if self.corrections is not None else None

    # -- the list ---------------------------------------------------------------------
    def load(self, root: Path) -> None:
        """Reads the list of the dataset at ``root`` (empty when there is none)."""
        try:
            self.corrections = load_corrections(root)
            self._writable = True
        except TlguiError as exc:
            # A list we cannot read is not overwritten: decisions are refused until the
            # user deals with the file the message names.
            self.corrections = Corrections(Path(root).expanduser().absolute())
            self._writable = False
            self.error.emit("Cannot read your label corrections", exc)
        self.changed.emit()

    def reload(self) -> None:
        """Reads the list again (after an apply or an undo changed it)."""
        if self.root is not None:
            self.load(self.root)

    def apply(self, raw: Dataset) -> Dataset:
        """The dataset as the corrections say it is (the scan itself stays as it was)."""
        root = raw.root.expanduser().absolute()
        if self.corrections is None or self.corrections.root != root:
            self.load(root)
        assert self.corrections is not None
        self._raw, self._folder_class = raw, None
        return apply_corrections(raw, self.corrections)

    def _folder_classes(self) -> dict[str, str]:
        if self._folder_class is None:
            self._folder_class = {}
            raw = self._raw
            if raw is not None:
                root = raw.root.expanduser().absolute()
                for s in (*raw.train, *raw.validation, *raw.test):
                    key = fast_relative_key(s.path, root)
                    if key is not None:
                        self._folder_class[key] = raw.class_names[s.label]
        return self._folder_class

    def ref_data(self) -> dict[str, Any] | None:
        """The list as an engine call carries it (None when there is nothing to apply)."""
        if self.corrections is None or self.corrections.empty:
            return None
        return self.corrections.to_dict()

    # -- decisions --------------------------------------------------------------------
    def _change(self, edit: Any) -> bool:
        if self.corrections is None:
            return False
        if not self._writable:
            self.error.emit("Your label corrections are not saved", TlguiError(
                "The stored correction list could not be read, so it is not overwritten; "
                "move it away and open the dataset again."))
            return False
        try:
            edit(self.corrections)
            save_corrections(self.corrections)
        except (TlguiError, OSError) as exc:
            log.info("correction not saved: %s", exc)
            self.error.emit("Cannot save the correction", exc)
            self.reload()
            return False
        self.changed.emit()
        return True

    def relabel(self, path: Path, class_name: str) -> bool:
        """An image of the dataset belongs to ``class_name`` (its folder's class: as is)."""
        key = relative_key(path, self.root) if self.root is not None else None
        if key is not None and self._folder_classes().get(key) == class_name:
            return self._change(lambda c: c.keep(path))
        return self._change(lambda c: c.relabel(path, class_name))

    def exclude(self, path: Path) -> bool:
        """An image of the dataset is not to be used."""
        return self._change(lambda c: c.exclude(path))

    def keep(self, path: Path) -> bool:
        """An image of the dataset was looked at and its label is right."""
        return self._change(lambda c: c.keep(path))

    def add(self, path: Path, class_name: str) -> bool:
        """A new image (outside the dataset) joins it as ``class_name``."""
        return self._change(lambda c: c.add_images([path], class_name))

    def forget(self, path: Path) -> bool:
        """Drops the decision about an image (or an added one)."""
        return self._change(lambda c: c.forget(path))

    # -- what to show -------------------------------------------------------------------
    def decision_text(self, path: Path, short: bool = False) -> str:
        """What was decided about an image, in a few words ("" when nothing); ``short``
        for a table column ("→ daisy", "kept")."""
        c = self.corrections
        if c is None:
            return ""
        added = c.additions.get(Path(path).expanduser().absolute().as_posix())
        if added is not None:
            return f"+ {added}" if short else f"added as {added}"
        key = relative_key(path, c.root)
        d = c.decisions.get(key) if key is not None else None
        if d is None:
            return ""
        if short:
            return {"relabel": f"→ {d.class_name}", "exclude": "excluded",
                    "keep": "kept"}[d.action]
        return {"relabel": f"relabelled → {d.class_name}", "exclude": "excluded",
                "keep": "kept as it is"}[d.action]

    def counts(self) -> Counter[str]:
        """Decisions per action, and ``add`` for added images."""
        out: Counter[str] = Counter()
        if self.corrections is not None:
            out.update(d.action for d in self.corrections.decisions.values())
            out["add"] += len(self.corrections.additions)
        return out

    def pending_text(self) -> str:
        """E.g. "3 relabelled, 1 excluded: used by training; your folders are unchanged."."""
        n = self.counts()
        parts = [f"{n['relabel']} relabelled" if n["relabel"] else "",
                 f"{n['exclude']} excluded" if n["exclude"] else "",
                 f"{plural(n['add'], 'new image')} added" if n["add"] else ""]
        shown = ", ".join(p for p in parts if p)
        if not shown:
            return (f"{plural(n['keep'], 'image')} checked and kept as labelled."
                    if n["keep"] else "")
        return f"{shown}: used by training; your folders are unchanged."

    def pending_moves(self) -> int:
        """Decisions ``Apply to folders`` would carry out (keeps need no move)."""
        n = self.counts()
        return n["relabel"] + n["exclude"] + n["add"]
