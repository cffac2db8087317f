"""Shared pieces of the reliability tests: the tiny config, tree hashes, unreadable files."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tlgui.core.config import PhaseConfig, TrainConfig

TINY = TrainConfig(weights="none", image_size=32, batch_size=8,
                   phase1=PhaseConfig(epochs=1), phase2=PhaseConfig(epochs=1),
                   fine_tune_at=140)
# Phase 1 only: a model build, decode, features and one head epoch (a few seconds).
TINY_P1 = TINY.replace(phase2=PhaseConfig(epochs=0))


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry below ``root``: file bytes hashed, links by target, folders by name.

    Symlinks are never followed, so a link loop cannot trap it; modes and
    modification times count too, so a touch is a change. Pipes, sockets and devices
    are recorded by mode and never opened (a pipe would block); folders are walked
    through descriptors, so paths longer than the system allows are covered too.
    """
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted((*dirnames, *filenames)):
            key = Path(rel_dir, name).as_posix().removeprefix("./")
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                out[key] = f"link -> {os.readlink(name, dir_fd=dirfd)}"
            elif stat.S_ISDIR(st.st_mode):
                out[key] = f"dir {st.st_mode:o} {st.st_mtime_ns}"
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(name, os.O_RDONLY, dir_fd=dirfd)
                with os.fdopen(fd, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                out[key] = f"file {st.st_mode:o} {st.st_mtime_ns} {digest}"
            else:
                out[key] = f"special {st.st_mode:o} {st.st_mtime_ns}"
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

    monkeypatch.setattr(os, "open", guarded_open)


def deny_entering(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    """Makes these folders behave as folders without search permission (chmod 000, as a
    user other than root): listing them and looking at anything inside them fail with
    PermissionError; the folders themselves can still be looked at."""
    locked = [os.fspath(f) for f in folders]

    def inside(text: str) -> bool:
        return any(text.startswith(f + os.sep) for f in locked)

    for name in ("stat", "lstat", "open", "scandir"):
        real = getattr(os, name)

        def guarded(path: object, *args: object, _real: Any = real, _name: str = name,
                    **kwargs: object) -> Any:
            text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
            if isinstance(text, str) and text:
                # The kernel follows links: a link to a file inside is denied too.
                follows = _name in ("stat", "open") and kwargs.get("follow_symlinks", True)
                target = os.path.realpath(text) if follows else text
                if inside(text) or inside(target) or (_name == "scandir" and text in locked):
                    raise PermissionError(errno.EACCES, "Permission denied", text)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, guarded)


def temp_litter(root: Path) -> list[Path]:
    """Half-written files an atomic write would leave behind if it failed to clean up."""
    return [p for p in root.rglob(".tlgui-tmp-*")]


def tiny_model_file(path: Path, classes: tuple[str, ...] = ("red", "green", "blue"),
                    size: int = 32) -> Path:
    """A tiny untrained classifier saved as a tlgui ``.keras`` file at ``path``."""
    from tlgui.core.model import ClassifierModel
    from tlgui.core.model_file import save_keras

    cm = ClassifierModel.build(TINY_P1.replace(image_size=size), classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_keras(cm.model, path, classes, {"image_size": size})
    return path


def snapshot(*roots: Path) -> dict[str, dict[str, str]]:
    """``tree_digest`` of each root, keyed by the root."""
    return {str(r): tree_digest(r) for r in roots}
