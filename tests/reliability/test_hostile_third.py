"""A third hostile pass, after the fixes of the second (2026-11-30): every case failed
before its fix. Nothing here loads a real model: a destination check that comes too late
shows as an error about the model file ("not a zip")."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.reliability.test_hostile_write import _bad_model, _cli, _image
from tlgui.core.prediction import Prediction

pytestmark = pytest.mark.timeout(240, method="signal")


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_audit_refuses_a_cache_inside_the_dataset(
        isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = isolated_dirs / "dA"
    _image(data / "cat" / "0.jpg")
    _image(data / "dog" / "0.jpg", (30, 30, 200))
    monkeypatch.setenv("TLGUI_CACHE_DIR", str(data / "cat"))
    before = _digest(data)
    code, text = _cli(["audit", str(data), "--weights", "none", "--image-size", "32",
                       "--folds", "2"], capsys)
    assert code == 1 and "never writes there" in text
    assert _digest(data) == before


def test_a_pixel_cache_linked_into_the_dataset_is_refused_before_the_scan(
        isolated_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = isolated_dirs / "dS"
    _image(data / "cat" / "0.jpg")
    (isolated_dirs / "cache").mkdir()
    os.symlink(data / "cat", isolated_dirs / "cache" / "pixels")
    code, text = _cli(["train", str(data), "--weights", "none", "--image-size", "32"],
                      capsys)
    assert code == 1 and "never writes there" in text
    assert sorted(p.name for p in (data / "cat").iterdir()) == ["0.jpg"]


@pytest.mark.parametrize("size", ["0", "99999"])
def test_audit_image_size_is_range_checked_first(
        isolated_dirs: Path, size: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _cli(["audit", str(isolated_dirs / "none"), "--image-size", size], capsys)
    assert code == 1 and "--image-size must be between" in text


@pytest.mark.parametrize("other", ["--sort-into", "--explain"])
def test_csv_inside_the_sort_or_heat_map_folder_is_refused_first(
        tmp_path: Path, other: str, capsys: pytest.CaptureFixture[str]) -> None:
    img = _image(tmp_path / "in" / "0.jpg")
    code, text = _cli(["predict", str(_bad_model(tmp_path / "m.keras")), str(img),
                       "--csv", str(tmp_path / "out" / "cat" / "0.jpg"), other,
                       str(tmp_path / "out")], capsys)
    assert code == 1 and "overlap" in text and "not a zip" not in text


def test_a_log_file_that_is_a_link_is_not_written_through(
        isolated_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = _image(isolated_dirs / "dL" / "cat" / "0.jpg")
    before = victim.read_bytes()
    logs = isolated_dirs / "logs"
    logs.mkdir()
    os.symlink(victim, logs / "tlgui.log")
    _cli(["runs", "show", "nosuchrun"], capsys)
    assert victim.read_bytes() == before


def test_copies_never_go_where_a_linked_input_really_lives(tmp_path: Path) -> None:
    from tlgui.core.errors import UnsafeDestination
    from tlgui.core.sorting import sort_into

    real = _image(tmp_path / "data" / "cat" / "0.jpg")
    (tmp_path / "inL").mkdir()
    os.symlink(real, tmp_path / "inL" / "a.jpg")
    rows = [Prediction(tmp_path / "inL" / "a.jpg", (("cat", 0.9),))]
    with pytest.raises(UnsafeDestination):
        sort_into(rows, tmp_path / "data", inputs=[tmp_path / "inL"])
    assert sorted(p.name for p in (tmp_path / "data").rglob("*")) == ["0.jpg", "cat"]


def test_two_classes_that_give_one_folder_name_get_two_folders(tmp_path: Path) -> None:
    from tlgui.core.events import Notice
    from tlgui.core.sorting import sort_into

    a = _image(tmp_path / "in" / "a.jpg")
    b = _image(tmp_path / "in" / "b.jpg", (30, 30, 200))
    notes: list[object] = []
    counts = sort_into([Prediction(a, (("x?", 0.9),)), Prediction(b, (("x*", 0.9),))],
                       tmp_path / "out", inputs=[tmp_path / "in"], report=notes.append)
    assert len(counts) == 2 and sorted(counts.values()) == [1, 1]
    assert any(isinstance(n, Notice) and "same folder name" in n.message for n in notes)


def test_a_class_folder_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    from tlgui.core.sorting import sort_into

    a = _image(tmp_path / "in" / "0.jpg")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "0.jpg").write_bytes(b"keep me")
    (tmp_path / "out").mkdir()
    os.symlink(precious, tmp_path / "out" / "cat")
    counts = sort_into([Prediction(a, (("cat", 0.9),))], tmp_path / "out",
                       inputs=[tmp_path / "in"], overwrite=True)
    assert counts == {} and (precious / "0.jpg").read_bytes() == b"keep me"
