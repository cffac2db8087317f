"""Shared pieces of the reliability tests: the tiny config, tree hashes, unreadable files."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tlgui.core import entries
from tlgui.core.config import PhaseConfig, TrainConfig

TINY = TrainConfig(weights="none", image_size=32, batch_size=8,
                   phase1=PhaseConfig(epochs=1), phase2=PhaseConfig(epochs=1),
                   fine_tune_at=140)
# Phase 1 only: a model build, decode, features and one head epoch (a few seconds).
TINY_P1 = TINY.replace(phase2=PhaseConfig(epochs=0))


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry below ``root``: file bytes hashed, links by target, folders by name.

    Symlinks are never followed, so a link loop cannot trap it; modes and
    modification times count too, so a touch is a change.
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted((*dirnames, *filenames)):
            p = Path(dirpath) / name
            key = p.relative_to(root).as_posix()
            st = p.lstat()
            if p.is_symlink():
                out[key] = f"link -> {os.readlink(p)}"
            elif p.is_dir():
                out[key] = f"dir {st.st_mode:o} {st.st_mtime_ns}"
            else:
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                out[key] = f"file {st.st_mode:o} {st.st_mtime_ns} {digest}"
    return out


def deny_reading(monkeypatch: pytest.MonkeyPatch, *locked: Path) -> None:
    """Makes opening these files for reading fail with PermissionError, as a chmod 000
    file would (tests run as root, where a chmod 000 file still reads). Every image
    tlgui reads is opened through ``entries.open_regular``, which calls ``os.open``."""
    real_open = os.open
    blocked = {os.fspath(p) for p in locked}

    def guarded_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) in blocked:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(entries.os, "open", guarded_open)


def deny_entering(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    """Makes these folders behave as folders without search permission (chmod 000, as a
    user other than root): listing them and looking at anything inside them fail with
    PermissionError; the folders themselves can still be looked at."""
    locked = [os.fspath(f) for f in folders]

    def inside(path: object) -> bool:
        text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
        return any(text.startswith(f + os.sep) for f in locked)

    def denied(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    for name in ("stat", "lstat", "open", "scandir"):
        real = getattr(os, name)

        def guarded(path: object, *args: object, _real: Any = real, _name: str = name,
                    **kwargs: object) -> Any:
            text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
            if inside(path) or (_name == "scandir" and text in locked):
                raise denied(path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, guarded)


def temp_litter(root: Path) -> list[Path]:
    """Half-written files an atomic write would leave behind if it failed to clean up."""
    return [p for p in root.rglob(".tlgui-tmp-*")]
