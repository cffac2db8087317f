"""Telling a dropped dataset from a folder of photos, shallowly; counting words."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imagegen import make_dataset, make_image
from tlgui.core import folder_probe
from tlgui.core.folder_probe import looks_like_dataset
from tlgui.core.wording import plural


def test_class_folders_and_split_folders_look_like_datasets(tmp_path: Path) -> None:
    assert looks_like_dataset(make_dataset(tmp_path / "classes", per_class=1))
    split = tmp_path / "split"
    (split / "Train" / "a").mkdir(parents=True)
    (split / "val" / "a").mkdir(parents=True)
    assert looks_like_dataset(split), "train/ and validation/ folders, even empty"


def test_photos_and_odd_folders_do_not(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        make_image((200, 40, 40), (20, 20), i).save(photos / f"{i}.jpg")
    (photos / "day1").mkdir()
    make_image((40, 40, 200), (20, 20), 9).save(photos / "day1" / "x.jpg")
    (photos / "notes").mkdir()
    (photos / "notes" / "a.txt").write_text("text")
    (photos / ".hidden").mkdir()
    make_image((40, 40, 200), (20, 20), 9).save(photos / ".hidden" / "x.jpg")
    assert not looks_like_dataset(photos), "one sub-folder with images is not a dataset"
    assert not looks_like_dataset(photos / "0.jpg")
    assert not looks_like_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert not looks_like_dataset(tmp_path / "empty")


def test_the_look_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "wide"
    for i in range(10):
        (root / f"c{i:02d}").mkdir(parents=True)
    # Images only after the first few folders' entries, and deep below them: not seen.
    deep = root / "c00" / "a" / "b"
    deep.mkdir(parents=True)
    make_image((1, 2, 3), (8, 8), 0).save(deep / "x.png")
    for name in ("c08", "c09"):
        for i in range(5):
            (root / name / f"{i}.txt").write_text("")
        make_image((1, 2, 3), (8, 8), 0).save(root / name / "z.png")
    monkeypatch.setattr(folder_probe, "MAX_SUBFOLDER_ENTRIES", 3)
    read: list[str] = []
    real = os.scandir

    @contextlib.contextmanager
    def images_last(path: Path) -> Iterator[list[os.DirEntry[str]]]:
        # A folder's order is the file system's: put the images last, as it may.
        read.append(os.fspath(path))
        with real(path) as it:
            yield sorted(it, key=lambda e: (e.name.endswith(".png"), e.name))

    monkeypatch.setattr(folder_probe.os, "scandir", images_last)
    assert not looks_like_dataset(root)
    assert len(read) == 11, "the folder and each sub-folder once, never deeper"
    monkeypatch.setattr(folder_probe, "MAX_SUBFOLDER_ENTRIES", 10)
    assert looks_like_dataset(root)


def test_plural() -> None:
    assert plural(1, "image") == "1 image"
    assert plural(0, "image") == "0 images"
    assert plural(1200, "class", "classes") == "1,200 classes"
