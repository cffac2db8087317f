"""Atomic writes: a temp file in the same folder, flushed, then ``os.replace``.

A reader sees the old file or the new one, never half of one; a failure or a kill
mid-write leaves the earlier file untouched and no partial file under the final name.
A failure is a ``WriteError`` naming the target (never the temp file) and the reason in
words. With ``replace=False`` an existing target is never replaced, even one that
appeared while the file was being written: the temp file is hard-linked into place,
which fails when the name is taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tlgui.core.errors import DestinationExists, WriteError

TEMP_PREFIX = ".tlgui-tmp-"


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None, *,
                replace: bool = True) -> Iterator[Path]:
    """Yields a temp path beside ``target``; on success it replaces ``target``.

    The temp name keeps ``target``'s suffix (Keras picks the format by suffix). On any
    exception the temp file is removed and ``target`` is untouched.

    Args:
        target: the final file.
        suffix: the temp file's suffix (default: ``target``'s).
        replace: when False an existing ``target`` is never replaced
            (``DestinationExists``), even one created while the block ran.

    Raises:
        WriteError: the folder or the file cannot be written (an ``OSError`` too).
        DestinationExists: ``replace`` is False and ``target`` exists.
    """
    target = Path(target)
    created = missing_folders(target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=TEMP_PREFIX, suffix=suffix if suffix is not None else target.suffix,
            dir=target.parent,
        )
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(target, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            _fsync(tmp)
            set_default_mode(tmp)  # mkstemp made it owner-only; a saved file follows the umask
            _move_into_place(tmp, target, replace)
        except WriteError as exc:
            if exc.path == tmp:  # a nested atomic write into our temp file
                raise exc.for_path(target) from exc
            raise
        except OSError as exc:
            # Errors about the temp file (or with no file named: a write on a full disk)
            # are the target's; others (a source file that cannot be read) keep their own.
            if exc.filename in (None, str(tmp), os.fspath(tmp)):
                raise WriteError(target, exc) from exc
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        for folder in created:  # deepest first; one holding anything else stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def missing_folders(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create for ``folder``, deepest first."""
    out = []
    while not os.path.lexists(folder) and folder.parent != folder:
        out.append(folder)
        folder = folder.parent
    return out


def _move_into_place(tmp: Path, target: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails when the name is taken: no check-then-replace race
    except FileExistsError as exc:
        raise DestinationExists(target) from exc
    except OSError:
        # No hard links on this file system (FAT, some network shares): check, then move.
        if os.path.lexists(target):
            raise DestinationExists(target) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def set_default_mode(path: str | Path) -> None:
    """Gives a file or folder the permissions a plain ``open``/``mkdir`` would.

    ``tempfile`` creates owner-only (0600/0700) entries; files meant to be shared, such
    as exported models, should follow the user's umask instead once moved into place.
    """
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    base = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, base & ~mask)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def atomic_write_bytes(target: str | Path, data: bytes, *, replace: bool = True) -> None:
    """Writes bytes atomically (see ``atomic_path`` for ``replace``)."""
    with atomic_path(target, replace=replace) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str, *, replace: bool = True) -> None:
    """Writes UTF-8 text atomically; undecodable bytes kept in names become escapes."""
    atomic_write_bytes(target, text.encode("utf-8", "backslashreplace"), replace=replace)


def atomic_write_json(target: str | Path, data: Any) -> None:
    """Writes JSON atomically.

    Text is written as is, unless it holds bytes that are not valid UTF-8 (a file name
    from another system): then every non-ASCII character is a ``\\uXXXX`` escape, which
    reads back to the same string.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=2, ensure_ascii=True)
    atomic_write_text(target, text + "\n")


def atomic_save(target: str | Path, save: Callable[[Path], None]) -> None:
    """Calls ``save(tmp_path)`` and moves the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        save(tmp)
