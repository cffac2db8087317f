"""What an entry on disk is, found without opening it, and walks that never leave a folder.

Reading a dataset or a predict input must not hang, wander or stop on one odd entry:

- a named pipe blocks whoever opens it until something writes to it, and a device file
  can stream forever, so only regular files are ever opened (``open_regular`` checks
  the opened descriptor too, in case the file was swapped after it was looked at);
- a symbolic link to a folder is never followed, so a link to ``/`` or a loop cannot
  take a walk out of the folder it was given;
- a name that is not valid UTF-8, a path longer than the system allows, a folder that
  cannot be opened: each becomes a reason in words, never an exception.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

# Linux's PATH_MAX; longer paths cannot be opened by name at all.
PATH_MAX = 4096
LINKED_FOLDER = "link to a folder, not followed"
FILE_GONE = "file no longer exists"
LINK_NOT_FOLLOWED = "symbolic link, not followed"


class EntryProblem(Exception):
    """An entry that cannot be used; ``reason`` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def kind_of(mode: int) -> str:
    """What a file mode is, in words ("a named pipe", "a folder", "a regular file")."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a special file"


def not_regular(mode: int) -> str:
    """The reason given for an entry that is not a regular file."""
    return f"not a regular file ({kind_of(mode)})"


# Characters that move or restyle a terminal's text, or reorder it, without being seen:
# C0 and C1 controls and DEL (category Cc), the line and paragraph separators, and the
# bidirectional embeddings, overrides and isolates (a name can otherwise look like
# another). Surrogates (Cs) cannot be written as UTF-8 at all.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


def _escape(char: str) -> str:
    """One character as it is shown: itself, or a ``\\xNN``/``\\uNNNN`` escape."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        # A byte that is not valid UTF-8, kept by os.fsdecode as a lone surrogate: show
        # the byte itself, as the name holds it.
        return f"\\x{code - 0xDC00:02x}"
    if char in _BIDI_CONTROLS or unicodedata.category(char) in _HIDDEN_CATEGORIES:
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def printable(path: str | Path) -> str:
    """``path`` (or any text read from outside) as text safe to print or write as UTF-8.

    Control characters (an escape sequence would drive the terminal), line breaks, bidi
    overrides and bytes that are not valid UTF-8 are shown as ``\\xNN`` (or ``\\uNNNN``)
    escapes; every other character is unchanged, so the result still reads as the name.
    Escaping again changes nothing.
    """
    text = str(path)
    if text.isprintable():  # the common case, and every escaped result
        return text
    return "".join(_escape(c) for c in text)


def printable_lines(text: str) -> str:
    """``text`` with each of its lines made ``printable``: a message of several lines
    keeps its line breaks, and nothing else in it can drive a terminal."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def control_character(text: str) -> str | None:
    """The first character of ``text`` that ``printable`` would escape, or None.

    A name holding one cannot be written unchanged to a one-line-per-entry file, a CSV
    cell or a terminal, so names that must travel as they are (class names) refuse it.
    """
    return next((c for c in text if _escape(c) != c), None)


def undecodable(name: str | Path) -> bool:
    """True when a name holds bytes that are not valid UTF-8."""
    try:
        str(name).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def stat_reason(exc: OSError, path: Path, link: bool = False) -> str:
    """Why ``os.stat`` failed on ``path``, in words."""
    if exc.errno == errno.ENAMETOOLONG:
        return (f"path too long for the system ({len(os.fsencode(str(path))):,} bytes; "
                f"the limit is {PATH_MAX:,})")
    if link and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
        return "broken symbolic link"
    if exc.errno == errno.ENOENT:
        return FILE_GONE
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ("symbolic link into a place that cannot be read (permission denied)"
                if link else "permission denied")
    return f"cannot read file ({exc.strerror or exc})"


def regular_file(path: Path) -> os.stat_result:
    """The status of ``path`` when it is (a link to) a regular file; it is not opened.

    Raises:
        EntryProblem: a broken link or loop, a pipe, socket, device or folder, a path
            too long, or one that cannot be looked at.
    """
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise EntryProblem(stat_reason(exc, path)) from exc
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except OSError as exc:
            raise EntryProblem(stat_reason(exc, path, link=True)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise EntryProblem(not_regular(st.st_mode))
    return st


def open_regular(path: Path, follow_links: bool = True) -> BinaryIO:
    """Opens a regular file for reading; never blocks on a pipe or a device.

    The file is opened non-blocking (a named pipe then opens at once instead of waiting
    for a writer) and the opened descriptor is checked, so a file replaced by a pipe
    after it was looked at is refused too.

    Args:
        path: the file.
        follow_links: False refuses a symbolic link itself (for tlgui's own files, which
            are never links, so a planted one cannot point the read elsewhere).

    Raises:
        EntryProblem: not a regular file, or it cannot be opened.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) \
        | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        link = os.path.islink(path)
        if link and not follow_links:
            raise EntryProblem(LINK_NOT_FOLLOWED) from exc
        raise EntryProblem(stat_reason(exc, path, link=link)) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise EntryProblem(not_regular(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of one folder, by name (``OSError`` when it cannot be listed)."""
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def folder_kind(entry: os.DirEntry[str]) -> str:
    """``"folder"`` (a real one), ``"linked folder"`` (a link to one) or ``"other"``.

    Raises:
        OSError: the entry cannot be looked at.
    """
    if entry.is_dir(follow_symlinks=False):
        return "folder"
    if entry.is_symlink() and _is_dir(Path(entry.path)):
        return "linked folder"
    return "other"


def walk_files(folder: Path, skip: Callable[[str], bool] = lambda name: False,
               ) -> Iterator[tuple[Path, str | None]]:
    """Every entry below ``folder`` that is not a folder, in a stable order.

    Yields ``(path, None)`` for entries to look at (files, links to files, pipes...)
    and ``(path, reason)`` for what cannot be walked: a link to a folder (never
    followed), a folder that cannot be opened (``folder`` itself included), a path too
    long. Names for which ``skip`` is true (hidden files, litter) are left out,
    folders included.
    """
    stack: list[Path] = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = sorted_entries(current)
        except OSError as exc:
            yield current, _folder_reason(exc, current)
            continue
        subfolders = []
        for entry in entries:
            if skip(entry.name):
                continue
            # The same path as ``entry.path``; joined to the folder's Path it shares the
            # folder's parts: a quarter less memory and half the time per file.
            path = current / entry.name
            try:
                kind = folder_kind(entry)
            except OSError as exc:
                yield path, stat_reason(exc, path)
                continue
            if kind == "folder":
                subfolders.append(path)
            elif kind == "linked folder":
                yield path, LINKED_FOLDER
            else:
                yield path, None
        stack.extend(reversed(subfolders))


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _folder_reason(exc: OSError, folder: Path) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return (f"folder path too long for the system ({len(os.fsencode(str(folder))):,} "
                f"bytes; the limit is {PATH_MAX:,}); the files inside it are not read")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "folder cannot be opened (permission denied); the files inside it are not read"
    return f"folder cannot be read ({exc.strerror or exc}); the files inside it are not read"
