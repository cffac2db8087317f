"""Where tlgui may write: one rule for every file it writes, checked before any long work.

tlgui writes CSV files, exports and their companions (``labels.txt``...), sorted copies,
``train --out`` models and run folders. For each destination, whatever wrote it:

- it is never an input being read, never inside a dataset or input folder being read,
  and never the model in use: ``UnsafeDestination``, even when asked to overwrite;
- it is never a folder, pipe or device where a file is expected: ``UnsafeDestination``;
- an existing file is replaced only when the user asked (``overwrite=True``; the
  command line's ``--overwrite``, a confirmation in the window) or when tlgui itself
  wrote it in the same job (``created_by_tlgui=True``): otherwise ``DestinationExists``;
- the folder it goes into must be writable, tried with a real probe file (a read-only
  disk, a folder that is a file...): ``WriteError`` naming the folder;
- each name in its path fits the file system (``PC_NAME_MAX`` bytes, 255 on most) and
  the whole path fits ``PC_PATH_MAX``: ``UnsafeDestination``, so that an over-long
  ``--csv`` name fails at once, not after the images were classified.

Files are compared by identity (device and inode) where they exist, so a symbolic link,
a hard link or another spelling of the same path is caught too.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tlgui.core.atomic import TEMP_PREFIX
from tlgui.core.entries import kind_of, printable
from tlgui.core.errors import DestinationExists, UnsafeDestination, WriteError

_Id = tuple[int, int]
# Where the system cannot say (Windows has no pathconf): Linux's limits.
NAME_MAX_FALLBACK = 255
PATH_MAX_FALLBACK = 4096


def _identity(path: Path) -> _Id | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _lstat_mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except (OSError, ValueError):
        return None


def _stat_mode(path: Path) -> int | None:
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):
        return None


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = Path(os.path.abspath(path))
    while _lstat_mode(path) is None and path.parent != path:
        path = path.parent
    return path


def _ancestor_ids(path: Path) -> set[_Id]:
    """Identities of ``path``'s existing folder and of every folder above it."""
    ids = set()
    current = _nearest_existing(path)
    # Both the path as spelled and its real location: a link in the path leads elsewhere.
    for start in (current, Path(os.path.realpath(current))):
        p = start
        while True:
            ident = _identity(p)
            if ident is not None:
                ids.add(ident)
            if p.parent == p:
                break
            p = p.parent
    return ids


def _same(a: Path, b: Path) -> bool:
    ia, ib = _identity(a), _identity(b)
    if ia is not None and ib is not None:
        return ia == ib
    return os.path.realpath(a) == os.path.realpath(b)


def _split_inputs(inputs: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    files: list[Path] = []
    folders: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        (folders if os.path.isdir(p) else files).append(p)
    return files, folders


def input_folders(inputs: Iterable[str | Path], files: Iterable[str | Path] = (),
                  ) -> list[Path]:
    """The folders nothing is written into: each input folder, and the folder of each
    input file (a dataset's class folder, when single images were given) and of each
    file of ``files`` (the files found and read, where they are linked from and where
    they really are). Each folder once."""
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        out.append(p if os.path.isdir(p) else p.parent)
    for f in files:
        p = Path(f).expanduser()
        # A linked file is read where it really lives: that folder is protected too.
        out += [p.parent, Path(os.path.realpath(p)).parent]
    seen: set[str] = set()
    unique = []
    for p in out:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _limit(folder: Path, name: str, fallback: int) -> int:
    try:
        value = os.pathconf(folder, name)
    except (OSError, ValueError, AttributeError):
        return fallback
    return value if value > 0 else fallback


def name_max(folder: str | Path) -> int:
    """The longest file name, in bytes, that ``folder`` (or the closest existing folder
    above it) takes."""
    existing = _nearest_existing(Path(folder).expanduser())
    return _limit(existing if os.path.isdir(existing) else existing.parent, "PC_NAME_MAX",
                  NAME_MAX_FALLBACK)


def check_name_lengths(path: str | Path) -> None:
    """Refuses a destination whose name, or a folder to be made on the way, is longer
    than the file system allows, or whose whole path is: the write would fail only at
    the end, after the work.

    Raises:
        UnsafeDestination: naming the over-long name and the limit.
    """
    dest = Path(os.path.abspath(Path(path).expanduser()))
    existing = _nearest_existing(dest.parent)
    folder = existing if os.path.isdir(existing) else existing.parent
    name_max = _limit(folder, "PC_NAME_MAX", NAME_MAX_FALLBACK)
    path_max = _limit(folder, "PC_PATH_MAX", PATH_MAX_FALLBACK)
    # Names are limited in bytes, not characters (an "é" takes two).
    for part in dest.relative_to(existing).parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise UnsafeDestination(dest, f"The name {printable(part)[:60]}... is {size} "
                                          f"bytes long; this file system allows at most "
                                          f"{name_max}. Choose a shorter name.")
    size = len(os.fsencode(str(dest)))
    if size >= path_max:  # the limit counts the closing NUL byte
        raise UnsafeDestination(dest, f"The path {printable(dest)[:60]}... is {size} bytes "
                                      f"long; this system allows at most {path_max - 1}. "
                                      "Choose a shorter path.")


def check_not_input(path: str | Path, inputs: Iterable[str | Path] = (),
                    model: str | Path | None = None) -> None:
    """Refuses a destination that is an input, lies inside an input folder, or is the model.

    Args:
        path: the file or folder about to be written.
        inputs: files and folders being read (a dataset root, predict inputs).
        model: the model file in use, if any.

    Raises:
        UnsafeDestination: naming the input or the model.
    """
    dest = Path(path).expanduser()
    files, folders = _split_inputs(inputs)
    if model is not None and _same(dest, Path(model).expanduser()):
        raise UnsafeDestination(dest, f"{printable(dest)} is the model being used; it is "
                                      "never overwritten. Choose another file name.",
                                Path(model))
    for f in files:
        if _same(dest, f):
            raise UnsafeDestination(dest, f"{printable(dest)} is one of the input files "
                                          "being read; it is never overwritten. Choose "
                                          "another file name.", f)
    above = _ancestor_ids(dest)
    for folder in folders:
        ident = _identity(folder)
        if ident is not None and ident in above:
            raise UnsafeDestination(dest, f"{printable(dest)} is inside {printable(folder)}, "
                                          "a dataset or input folder; tlgui never writes there. "
                                          "Choose a place outside it.", folder)


def check_output(path: str | Path, *, inputs: Iterable[str | Path] = (),
                 model: str | Path | None = None, overwrite: bool = False,
                 created_by_tlgui: bool = False) -> Path:
    """Checks one file tlgui is about to write; call it before any long work.

    Args:
        path: the destination file.
        inputs: files and folders being read: the destination may not be one of the
            files nor lie inside one of the folders.
        model: the model file in use; never overwritten.
        overwrite: the user asked to replace an existing file.
        created_by_tlgui: the existing file was written by this same job (a checkpoint
            saved again); it may be replaced.

    Returns:
        The destination, with ``~`` expanded.

    Raises:
        UnsafeDestination: an input, inside an input folder, the model, or not a file.
        DestinationExists: a file is there and neither flag allows replacing it.
        WriteError: its folder cannot be created or written.
    """
    dest = Path(path).expanduser()
    check_not_input(dest, inputs, model)
    check_name_lengths(dest)
    mode = _lstat_mode(dest)
    if mode is not None and stat.S_ISLNK(mode):
        # A link is replaced, never written through; still, never one to a device or a
        # pipe (/dev/stdout is such a link, in a folder that is the system's).
        target = _stat_mode(dest)
        if target is not None and not stat.S_ISREG(target):
            raise UnsafeDestination(dest, f"{printable(dest)} is a link to "
                                          f"{kind_of(target)}, not to a file; choose a "
                                          "file name.")
    elif mode is not None and not stat.S_ISREG(mode):
        raise UnsafeDestination(dest, f"{printable(dest)} is {kind_of(mode)}, not a file; "
                                      "choose a file name.")
    if mode is not None and not (overwrite or created_by_tlgui):
        raise DestinationExists(dest)
    check_writable_folder(dest.parent)
    return dest


def check_folder_output(path: str | Path, *, inputs: Iterable[str | Path] = (),
                        model: str | Path | None = None, may_hold_inputs: bool = False,
                        ) -> Path:
    """Checks a folder tlgui is about to write files into (sorted copies, run folders).

    The folder may not be or lie inside an input folder, nor hold one (unless
    ``may_hold_inputs``: run folders get new unique names, which cannot be an input);
    if it exists it must be a folder, and it (or the closest existing folder above it)
    must be writable.

    Raises:
        UnsafeDestination: it overlaps an input folder, or is a file.
        WriteError: it cannot be written.
    """
    dest = Path(path).expanduser()
    check_not_input(dest, inputs, model)
    check_name_lengths(dest)
    ident = _identity(dest)
    _, folders = _split_inputs(inputs)
    for folder in [] if may_hold_inputs else folders:
        if ident is not None and ident in _ancestor_ids(folder):
            raise UnsafeDestination(dest, f"{printable(dest)} holds {printable(folder)}, a "
                                          "folder being read; choose a destination outside "
                                          "it.", folder)
    mode = _lstat_mode(dest)
    if mode is not None and not os.path.isdir(dest):
        raise UnsafeDestination(dest, f"{printable(dest)} is {kind_of(mode)}, not a "
                                      "folder; choose a folder.")
    check_writable_folder(dest)
    return dest


def check_writable_folder(folder: str | Path) -> None:
    """Checks that files can be created in ``folder`` (or, if missing, in the closest
    folder above it, where it will be created): a probe file is made and removed.

    Raises:
        WriteError: naming the folder and the reason (read-only, permission, a file in
            the way...).
    """
    folder = Path(folder).expanduser()
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        mode = _lstat_mode(existing)
        what = kind_of(mode) if mode is not None else "missing"
        raise UnsafeDestination(folder, f"Cannot write in {printable(folder)}: "
                                        f"{printable(existing)} is {what}, not a folder.")
    try:
        fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX + "probe-", dir=existing)
    except OSError as exc:
        raise WriteError(folder, exc, "in the folder") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_folder_outside(dest: str | Path, folders: Iterable[str | Path], what: str) -> Path:
    """``check_folder_output`` for a folder of copies (sorted images, heat maps): an
    overlap with an input folder is told in the words of ``what`` ("sort destination").

    Raises:
        UnsafeDestination: ``dest`` is, holds or lies in one of ``folders``, or is a file.
        WriteError: it cannot be written.
    """
    try:
        return check_folder_output(dest, inputs=folders)
    except UnsafeDestination as exc:
        if exc.conflict is None:
            raise
        raise UnsafeDestination(
            exc.path, f"The {what} {printable(dest)} overlaps the input folder "
                      f"{printable(exc.conflict)}; input folders are never changed, so "
                      "choose a folder outside them.", exc.conflict) from exc


def check_cache_outside(data: str | Path) -> None:
    """Refuses a pixel cache that is, or leads by a link, inside the dataset being read:
    the cache is written while the dataset is read.

    Raises:
        UnsafeDestination: naming the cache folder and the dataset.
    """
    from tlgui.core.paths import cache_dir

    for folder in (cache_dir(), cache_dir() / "pixels"):
        check_not_input(folder, [data])
        check_not_input(Path(os.path.realpath(folder)), [data])
