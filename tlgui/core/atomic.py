"""Atomic writes: a temp file in the same folder, flushed, then ``os.replace``.

A reader sees the old file or the new one, never half of one; a failure or a kill
mid-write leaves the earlier file untouched and no partial file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".tlgui-tmp-"


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yields a temp path beside ``target``; on success it replaces ``target``.

    The temp name keeps ``target``'s suffix (Keras picks the format by suffix). On any
    exception the temp file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=TEMP_PREFIX, suffix=suffix if suffix is not None else target.suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        set_default_mode(tmp)  # mkstemp made it owner-only; a saved file follows the umask
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


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


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    """Writes bytes atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    """Writes UTF-8 text atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | Path, data: Any) -> None:
    """Writes JSON atomically."""
    atomic_write_text(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def atomic_save(target: str | Path, save: Callable[[Path], None]) -> None:
    """Calls ``save(tmp_path)`` and moves the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        save(tmp)
