"""Shared pieces of the reliability tests: the tiny config, tree hashes, unreadable files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tlgui.core import imageio
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
    """Makes Pillow raise PermissionError for these files (tests run as root, where a
    chmod 000 file still reads)."""
    real_open = imageio.Image.open
    blocked = {Path(p) for p in locked}

    def guarded_open(fp: object, *args: object, **kwargs: object) -> object:
        if isinstance(fp, (str, os.PathLike)) and Path(fp) in blocked:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(imageio.Image, "open", guarded_open)


def temp_litter(root: Path) -> list[Path]:
    """Half-written files an atomic write would leave behind if it failed to clean up."""
    return [p for p in root.rglob(".tlgui-tmp-*")]
