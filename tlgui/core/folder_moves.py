"""Carrying corrections out on the user's folders, on request, with an undo list.

``plan_apply`` lists the exact moves; nothing changes until ``apply_plan``, which moves
files within the dataset (a rename on one file system: a file is at its old place or at
its new one, never half-copied), never replaces a file (a taken name gets a free one),
and undoes what it did if any step fails. Excluded images go to a folder next to the
dataset (``<dataset> - excluded``), where a scan does not see them and the user does;
added images are copied, never moved, from where they are. The undo list, kept in tlgui's
data folder, is written before the first move, so even a kill mid-apply can be undone;
``undo_last`` replays it backwards and restores the folders' times, so the tree is
byte-identical to before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlgui.core.atomic import TEMP_PREFIX, atomic_write_json
from tlgui.core.corrections import (
    Corrections,
    Decision,
    corrections_dir,
    dataset_key,
    load_corrections,
    relative_key,
    save_corrections,
)
from tlgui.core.dataset import SPLIT_NAMES, Dataset, Sample
from tlgui.core.errors import TlguiError
from tlgui.core.pixel_store import PixelStore
from tlgui.core.sorting import safe_folder_name

log = logging.getLogger(__name__)
EXCLUDED_SUFFIX = " - excluded"


@dataclass(frozen=True)
class Move:
    """One file operation of a plan.

    Attributes:
        source: the file now.
        destination: where it goes (a free name: nothing is there).
        copy: True for an added image, copied from outside the dataset.
        reason: what it carries out, in words.
        key: the correction it carries out (a decision key, or the addition's path).
        size: the source's size when planned (a changed file is not moved).
        mtime_ns: the source's modification time when planned.
    """

    source: Path
    destination: Path
    copy: bool
    reason: str
    key: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ApplyPlan:
    """The exact file operations that carry a dataset's corrections out.

    Attributes:
        root: the dataset folder.
        moves: the operations, in the order they will run.
    """

    root: Path
    moves: tuple[Move, ...]

    def lines(self) -> list[str]:
        """One line per operation, for showing the plan before it runs."""
        return [f"{'copy' if m.copy else 'move'} {m.source} -> {m.destination}  ({m.reason})"
                for m in self.moves]


@dataclass(frozen=True)
class UndoRecord:
    """What one apply did, as kept in the undo list.

    Attributes:
        when: local time of the apply.
        moves: the operations done (in order).
        created: folders the apply created (removed again by undo when empty).
    """

    when: str
    moves: tuple[Move, ...]
    created: tuple[Path, ...]

    @classmethod
    def of(cls, record: dict[str, Any]) -> UndoRecord:
        """From its JSON form."""
        return cls(str(record.get("when", "")),
                   tuple(Move(Path(m["source"]), Path(m["destination"]), bool(m["copy"]),
                              str(m.get("reason", "")), str(m["key"]), int(m["size"]),
                              int(m["mtime_ns"])) for m in record.get("moves", [])),
                   tuple(Path(p) for p in record.get("created", [])))


def undo_path(root: str | Path) -> Path:
    """Where the undo list of the dataset at ``root`` is kept."""
    return corrections_dir() / f"{dataset_key(root)}.undo.json"


def excluded_folder(root: Path) -> Path:
    """The folder next to the dataset that excluded images are moved into."""
    return root.parent / f"{root.name}{EXCLUDED_SUFFIX}"


def _free(target: Path, taken: set[Path]) -> Path:
    n = 2
    out = target
    while out in taken or out.exists() or out.is_symlink():
        out = target.with_name(f"{target.stem} ({n}){target.suffix}")
        n += 1
    taken.add(out)
    return out


def _folder_name(dataset: Dataset, class_name: str) -> str:
    # A class of the dataset is named after its folder; a new one gets a safe name.
    return class_name if class_name in dataset.class_names else safe_folder_name(class_name)


def _class_folder(root: Path, dataset: Dataset, relative: Path, class_name: str) -> Path:
    """The folder of ``class_name`` on the same side of a train/validation layout."""
    if dataset.layout == "split_folders":
        return root / relative.parts[0] / _folder_name(dataset, class_name)
    return root / _folder_name(dataset, class_name)


def _train_dir(root: Path, dataset: Dataset) -> Path:
    if dataset.layout != "split_folders":
        return root
    for name in SPLIT_NAMES["train"]:
        for child in root.iterdir():
            if child.is_dir() and child.name.lower() == name:
                return child
    return root / "train"


def plan_apply(dataset: Dataset, corrections: Corrections) -> ApplyPlan:
    """The exact file moves that put the corrections into the folders; changes nothing.

    A relabelled image moves to its class's folder (inside the same sub-folder path and
    the same train/validation side), an excluded one to ``excluded_folder``, an added
    one is copied into its class's folder (the training side). "Keep" needs no move.

    Raises:
        TlguiError: a file to move is missing.
    """
    root = dataset.root.absolute()
    samples: dict[str, Sample] = {}
    for s in (*dataset.train, *dataset.validation, *dataset.test):
        key = relative_key(s.path, root)
        if key is not None:
            samples[key] = s
    taken: set[Path] = set()
    moves: list[Move] = []
    for key, d in sorted(corrections.decisions.items()):
        if d.action == "keep" or key not in samples:
            continue
        s = samples[key]
        rel = Path(key)
        if d.action == "exclude":
            target = excluded_folder(root) / rel
            reason = "exclude"
        else:
            # Below the class folder: sub-folders are kept.
            depth = 2 if dataset.layout == "split_folders" else 1
            inner = Path(*rel.parts[depth:])
            target = _class_folder(root, dataset, rel, d.class_name) / inner
            old = dataset.class_names[s.label] if s.label < len(dataset.class_names) else "?"
            if target.parent == s.path.absolute().parent:
                continue  # already in that class's folder
            reason = f"relabel {old} -> {d.class_name}"
        moves.append(Move(s.path.absolute(), _free(target, taken), False, reason, key,
                          s.size, s.mtime_ns))
    train_dir = _train_dir(root, dataset)
    for path_text, name in sorted(corrections.additions.items()):
        src = Path(path_text)
        try:
            st = src.stat()
        except OSError as exc:
            raise TlguiError(f"Cannot add {src}: {exc.strerror or exc}.") from exc
        folder = train_dir / _folder_name(dataset, name)
        moves.append(Move(src, _free(folder / src.name, taken), True, f"add as {name}",
                          path_text, st.st_size, st.st_mtime_ns))
    return ApplyPlan(root, tuple(moves))


def _place(src: Path, dst: Path, copy: bool) -> None:
    """Moves or copies one file to a free name, never replacing a file there."""
    if copy:
        tmp = dst.with_name(f"{TEMP_PREFIX}{dst.name}")
        shutil.copy2(src, tmp)
        try:
            _link_or_rename(tmp, dst)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return
    _link_or_rename(src, dst)


def _link_or_rename(src: Path, dst: Path) -> None:
    # A hard link refuses an existing destination atomically; where links are not
    # possible (FAT, some network drives) the rename follows a check.
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(17, "File exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def _dir_times(paths: set[Path]) -> dict[str, list[int]]:
    out = {}
    for d in paths:
        with contextlib.suppress(OSError):
            st = d.stat()
            out[str(d)] = [st.st_atime_ns, st.st_mtime_ns]
    return out


def _restore_dir_times(times: dict[str, list[int]]) -> None:
    # Deepest first: restoring a folder's times does not touch its parent's.
    for d, (atime, mtime) in sorted(times.items(), key=lambda kv: -len(Path(kv[0]).parts)):
        with contextlib.suppress(OSError):
            os.utime(d, ns=(atime, mtime))


def _read_undo(root: Path) -> list[dict[str, Any]]:
    path = undo_path(root)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TlguiError(f"Cannot read the undo list {path}: {exc}") from exc
    return data if isinstance(data, list) else []


def _carry_cache(cache: PixelStore | None, move: Move) -> None:
    if cache is None:
        return
    old = Sample(move.source, 0, move.size, move.mtime_ns)
    new = Sample(move.destination, 0, move.size, move.mtime_ns)
    cache.carry_over(old, new)


def apply_plan(plan: ApplyPlan, cache: PixelStore | None = None) -> UndoRecord:
    """Carries a plan out and records how to undo it.

    Args:
        plan: from ``plan_apply``.
        cache: the pixel cache to carry entries over in (default: the user's), so that
            a moved image is not decoded again.

    Returns:
        What was done, as the undo list now holds it.

    Raises:
        TlguiError: a file changed or vanished since the plan, or a move failed; the
            moves already done are undone first.
    """
    root, moves = plan.root, list(plan.moves)
    cache = cache if cache is not None else PixelStore()
    for m in moves:
        try:
            st = m.source.stat()
        except OSError as exc:
            raise TlguiError(f"{m.source} cannot be read ({exc.strerror}); nothing was "
                             "moved. Scan the folder again.") from exc
        if (st.st_size, st.st_mtime_ns) != (m.size, m.mtime_ns):
            raise TlguiError(f"{m.source} changed since the plan; nothing was moved. Scan "
                             "the folder again.")
        if m.destination.exists() or m.destination.is_symlink():
            raise TlguiError(f"{m.destination} exists now; nothing was moved. Plan again.")
    corrections = load_corrections(root)
    outside = excluded_folder(root)
    touched = {root}
    for m in moves:
        touched.update(p for p in (*m.source.parents, *m.destination.parents)
                       if p.is_relative_to(root) or p.is_relative_to(outside))
        if m.destination.is_relative_to(outside):
            touched.add(outside.parent)  # creating the excluded folder changes its time
    record: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "state": "applying",
        "moves": [_as_dict(m) for m in moves],
        "created": [], "times": _dir_times({p for p in touched if p.is_dir()}),
        "decisions": {m.key: {"action": d.action, "class": d.class_name}
                      for m in moves if (d := corrections.decisions.get(m.key))},
        "additions": {m.key: corrections.additions[m.key] for m in moves
                      if m.copy and m.key in corrections.additions},
    }
    history = _read_undo(root)
    history.append(record)
    # Written before the first move: a kill mid-apply leaves a list that undoes it.
    atomic_write_json(undo_path(root), history)
    done: list[Move] = []
    current = moves[0] if moves else None
    try:
        for current in moves:
            missing = [p for p in reversed(current.destination.parents) if not p.exists()]
            if missing:
                record["created"].extend(str(p) for p in missing)
                atomic_write_json(undo_path(root), history)  # before they exist
                for p in missing:
                    p.mkdir()
            _place(current.source, current.destination, current.copy)
            done.append(current)
    except BaseException as exc:
        _undo_moves(record, [_as_dict(m) for m in done])
        history.pop()
        atomic_write_json(undo_path(root), history)
        if not isinstance(exc, OSError) or current is None:
            raise
        raise TlguiError(f"Moving {current.source} to {current.destination} failed "
                         f"({exc.strerror or exc}); every move was undone.") from exc
    for m in done:
        _carry_cache(cache, m)
    record["state"] = "applied"
    atomic_write_json(undo_path(root), history)
    for m in moves:
        corrections.decisions.pop(m.key, None)
        if m.copy:
            corrections.additions.pop(m.key, None)
    save_corrections(corrections)
    return UndoRecord.of(record)


def _as_dict(m: Move) -> dict[str, Any]:
    return {"source": str(m.source), "destination": str(m.destination), "copy": m.copy,
            "reason": m.reason, "size": m.size, "mtime_ns": m.mtime_ns, "key": m.key}


def _undo_moves(record: dict[str, Any], moves: list[dict[str, Any]]) -> list[str]:
    """Puts files back, newest move first; returns what could not be undone."""
    left = []
    for m in reversed(moves):
        src, dst = Path(m["source"]), Path(m["destination"])
        try:
            if not dst.exists():
                continue  # never done (a kill before it), or already undone
            if m["copy"]:
                st = dst.stat()
                if (st.st_size, st.st_mtime_ns) != (m["size"], m["mtime_ns"]):
                    left.append(f"{dst} was changed since it was added; it was kept")
                    continue
                dst.unlink()
            elif src.exists():
                left.append(f"{src} exists again; {dst} was left where it is")
            else:
                _link_or_rename(dst, src)
        except OSError as exc:
            left.append(f"{dst}: {exc.strerror or exc}")
    for d in sorted(record.get("created", []), key=lambda p: -len(Path(p).parts)):
        with contextlib.suppress(OSError):
            Path(d).rmdir()  # only when empty: a file the user put there stays
    _restore_dir_times(record.get("times", {}))
    return left


def has_undo(root: str | Path) -> bool:
    """True when an apply on the dataset at ``root`` can be undone."""
    try:
        return bool(_read_undo(Path(root).expanduser().absolute()))
    except TlguiError:
        return False


def undo_last(root: str | Path) -> list[str] | None:
    """Undoes the last apply on the dataset at ``root``.

    Returns:
        None when there is nothing to undo; else the files that could not be put back
        (empty when everything was), each with the reason.
    """
    root = Path(root).expanduser().absolute()
    history = _read_undo(root)
    if not history:
        return None
    record = history[-1]
    left = _undo_moves(record, list(record.get("moves", [])))
    corrections = load_corrections(root)
    for key, entry in record.get("decisions", {}).items():
        corrections.decisions.setdefault(key, Decision(entry["action"], entry["class"]))
    for key, name in record.get("additions", {}).items():
        corrections.additions.setdefault(key, name)
    save_corrections(corrections)
    history.pop()
    atomic_write_json(undo_path(root), history)
    # The pixel cache needs nothing: the entries under the original paths were linked
    # to the new ones, never removed.
    return left
