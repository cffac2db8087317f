"""The user's label decisions for a dataset, kept in tlgui's data folder, never in the dataset.

Per image: relabel to a class, exclude, or keep as is (reviewed and fine); and external
images to add as a class (labelling new images). ``apply_corrections`` gives the dataset
training uses: same files, new labels, without the excluded ones and with the added
ones, so the user's folders stay as they are and every cached decode still fits (the
pixel cache keys on the file, not its label). ``folder_moves`` carries the decisions out
on the folders when the user asks for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tlgui.core.atomic import atomic_write_json
from tlgui.core.dataset import Dataset, Problem, Sample
from tlgui.core.errors import TlguiError
from tlgui.core.imageio import ImageProblem, probe
from tlgui.core.paths import data_dir
from tlgui.core.wording import plural

log = logging.getLogger(__name__)

Action = Literal["relabel", "exclude", "keep"]
ACTIONS: tuple[Action, ...] = ("relabel", "exclude", "keep")
FORMAT = "tlgui-corrections"
VERSION = 1
# A correction list is a small JSON file; anything far larger is not one of ours.
MAX_FILE_BYTES = 64 * 2**20


def dataset_key(root: str | Path) -> str:
    """The name tlgui files a dataset's corrections under: a digest of its absolute path."""
    text = str(Path(root).expanduser().resolve())
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def corrections_dir() -> Path:
    """The folder holding every dataset's correction list and undo list."""
    return data_dir() / "corrections"


def corrections_path(root: str | Path) -> Path:
    """Where the correction list of the dataset at ``root`` is kept."""
    return corrections_dir() / f"{dataset_key(root)}.json"


def relative_key(path: str | Path, root: Path) -> str | None:
    """``path`` relative to ``root``, ``/``-separated, or None when it is not inside.

    A relative ``path`` is taken as relative to ``root``. The paths are compared as
    written first, then with symbolic links resolved (the same folder reached through a
    link), never resolving the file itself.
    """
    p = Path(path).expanduser()
    p = p if p.is_absolute() else root / p
    # The paths a scan made are the root joined with names: a string prefix tells (20
    # times quicker than relative_to, which counts on 100,000 files); others go on below.
    text, prefix = str(p), os.path.join(str(root), "")
    if p.is_absolute() and root.is_absolute() and text.startswith(prefix) \
            and len(text) > len(prefix):
        return text[len(prefix):].replace(os.sep, "/")
    try:
        return p.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        pass
    try:
        return (p.parent.resolve() / p.name).relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return None


@dataclass(frozen=True)
class Decision:
    """What the user decided for one image of the dataset.

    Attributes:
        action: ``relabel`` (to ``class_name``), ``exclude`` or ``keep`` (as is).
        class_name: the new class of a relabel, else "".
    """

    action: Action
    class_name: str = ""


@dataclass
class Corrections:
    """A dataset's correction list.

    Attributes:
        root: the dataset folder (absolute).
        decisions: per image, by its path relative to ``root`` (``/``-separated).
        additions: external images to add, by absolute path, with their class.
    """

    root: Path
    decisions: dict[str, Decision] = field(default_factory=dict)
    additions: dict[str, str] = field(default_factory=dict)

    def key(self, path: str | Path) -> str:
        """The key of an image of the dataset (its path relative to ``root``).

        Raises:
            TlguiError: the file is not inside the dataset.
        """
        key = relative_key(path, self.root)
        if key is None:
            raise TlguiError(f"{path} is not inside the dataset {self.root}.")
        return key

    def relabel(self, path: str | Path, class_name: str) -> None:
        """Records that an image belongs to ``class_name``."""
        if not class_name.strip():
            raise TlguiError("A class name cannot be empty.")
        self.decisions[self.key(path)] = Decision("relabel", class_name.strip())

    def exclude(self, path: str | Path) -> None:
        """Records that an image must not be used."""
        self.decisions[self.key(path)] = Decision("exclude")

    def keep(self, path: str | Path) -> None:
        """Records that an image was reviewed and its label is right."""
        self.decisions[self.key(path)] = Decision("keep")

    def forget(self, path: str | Path) -> None:
        """Drops any decision about an image (or an addition of an external one)."""
        key = relative_key(path, self.root)
        if key is not None:
            self.decisions.pop(key, None)
        self.additions.pop(Path(path).expanduser().absolute().as_posix(), None)

    def add_images(self, paths: Iterable[str | Path], class_name: str) -> None:
        """Records external images (outside the dataset) to add as ``class_name``."""
        if not class_name.strip():
            raise TlguiError("A class name cannot be empty.")
        for p in paths:
            absolute = Path(p).expanduser().absolute()
            if relative_key(absolute, self.root) is not None:
                self.relabel(absolute, class_name)
            else:
                self.additions[absolute.as_posix()] = class_name.strip()

    def decision_for(self, path: str | Path) -> Decision | None:
        """The decision about an image of the dataset, or None."""
        return self.decisions.get(self.key(path))

    @property
    def empty(self) -> bool:
        """No decision and no addition."""
        return not self.decisions and not self.additions

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "format": FORMAT, "version": VERSION, "root": str(self.root),
            "decisions": {k: {"action": d.action, "class": d.class_name}
                          for k, d in sorted(self.decisions.items())},
            "additions": [{"path": k, "class": c} for k, c in sorted(self.additions.items())],
        }

    @classmethod
    def from_dict(cls, root: Path, data: Any, source: Path) -> Corrections:
        """Reads the JSON form; a malformed entry is skipped (and logged), never fatal.

        Raises:
            TlguiError: the file is not a correction list.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TlguiError(f"{source} is not a tlgui correction list.")
        out = cls(root)
        decisions = data.get("decisions")
        for key, entry in (decisions.items() if isinstance(decisions, dict) else []):
            action = entry.get("action") if isinstance(entry, dict) else None
            name = entry.get("class", "") if isinstance(entry, dict) else ""
            if action not in ACTIONS or not isinstance(key, str) or not isinstance(name, str) \
                    or (action == "relabel" and not name):
                log.warning("%s: skipped a malformed decision for %r", source, key)
                continue
            out.decisions[key] = Decision(action, name if action == "relabel" else "")
        additions = data.get("additions")
        for entry in additions if isinstance(additions, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) \
                    and isinstance(entry.get("class"), str) and entry["class"]:
                out.additions[entry["path"]] = entry["class"]
            else:
                log.warning("%s: skipped a malformed addition %r", source, entry)
        return out


def load_corrections(root: str | Path) -> Corrections:
    """The correction list of a dataset (empty when there is none yet).

    Raises:
        TlguiError: the stored file is unreadable or not a correction list.
    """
    root = Path(root).expanduser().absolute()
    path = corrections_path(root)
    if not path.is_file():
        return Corrections(root)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TlguiError(f"{path} is too large to be a correction list.")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TlguiError(f"Cannot read the correction list {path}: {exc}") from exc
    return Corrections.from_dict(root, data, path)


def save_corrections(corrections: Corrections) -> Path:
    """Writes a correction list atomically to tlgui's data folder; returns its path."""
    path = corrections_path(corrections.root)
    atomic_write_json(path, corrections.to_dict())
    return path


def _added_sample(path: Path, label: int) -> Sample | Problem:
    try:
        probe(path)
        st = path.stat()
    except ImageProblem as exc:
        return Problem(path, exc.reason)
    except OSError as exc:
        return Problem(path, f"cannot read file ({exc.strerror})")
    return Sample(path, label, st.st_size, st.st_mtime_ns)


def apply_corrections(dataset: Dataset, corrections: Corrections) -> Dataset:
    """The dataset as the corrections say it should be, for training; no file is touched.

    Relabelled images keep their split; excluded ones are left out; added images join
    the training split. A class only the corrections name is added after the others.
    Decisions about files that are no longer in the dataset are ignored, with a warning.

    Returns:
        A new ``Dataset`` (the same one when there is nothing to apply).
    """
    if corrections.empty:
        return dataset
    names = list(dataset.class_names)
    wanted = [d.class_name for d in corrections.decisions.values() if d.action == "relabel"]
    for name in sorted(set(wanted) | set(corrections.additions.values())):
        if name not in names:
            names.append(name)
    seen: set[str] = set()
    excluded = 0

    def fix(samples: tuple[Sample, ...]) -> tuple[Sample, ...]:
        nonlocal excluded
        out = []
        for s in samples:
            key = relative_key(s.path, dataset.root) or ""
            d = corrections.decisions.get(key)
            if d is not None:
                seen.add(key)
            if d is None or d.action == "keep":
                out.append(s)
            elif d.action == "exclude":
                excluded += 1
            else:
                out.append(replace(s, label=names.index(d.class_name)))
        return tuple(out)

    train, validation, test = fix(dataset.train), fix(dataset.validation), fix(dataset.test)
    present = {s.path.absolute() for s in (*train, *validation, *test)}
    added: list[Sample] = []
    problems: list[Problem] = []
    for path_text, name in sorted(corrections.additions.items()):
        path = Path(path_text)
        if path.absolute() in present:
            continue
        got = _added_sample(path, names.index(name))
        if isinstance(got, Sample):
            added.append(got)
        else:
            problems.append(got)
    warnings = list(dataset.warnings)
    stale = len(corrections.decisions) - len(seen)
    if stale:
        warnings.append(f"{plural(stale, 'correction')} name"
                        f"{'s' if stale == 1 else ''} files that are no longer in the "
                        "dataset; they are ignored.")
    if excluded:
        warnings.append(f"{plural(excluded, 'image')} excluded by your corrections.")
    return replace(dataset, class_names=tuple(names), train=train + tuple(added),
                   validation=validation, test=test,
                   problems=dataset.problems + tuple(problems),
                   warnings=tuple(warnings))
