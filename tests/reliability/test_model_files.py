"""Model files are untrusted input: bounded reads, validated metadata, no leftovers.

Each crafted file starts from a real tiny model and changes one thing, the way a
damaged download or a hostile sender would. Every refusal is a ``ModelFileError`` that
names the file; nothing is left in the temporary folder; the command line shows one
line, never a traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.helpers import tiny_model_file
from tlgui.cli import main
from tlgui.core.errors import ModelFileError
from tlgui.core.predict import Predictor

pytestmark = pytest.mark.timeout(120, method="signal")


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("good") / "good.keras")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temporary folder, empty and private to the test."""
    folder = tmp_path / "systmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _rewrite(src: Path, dst: Path, change: Callable[[str, bytes], bytes | None],
             extra: dict[str, bytes] | None = None,
             compression: int = zipfile.ZIP_STORED) -> Path:
    """A copy of ``src`` with members changed (None drops one) and ``extra`` added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def _with_meta(good: Path, dst: Path, meta: object | bytes) -> Path:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return _rewrite(good, dst, lambda name, data: raw if name == "tlgui.json" else data)


def _refused(path: Path, match: str) -> str:
    with pytest.raises(ModelFileError, match=match) as info:
        Predictor.load(path)
    assert path.name in str(info.value)
    return str(info.value)


BASE = {"format": "tlgui-classifier", "version": 1, "class_names": ["red", "green", "blue"],
        "image_size": 32}


@pytest.mark.parametrize(("change", "match"), [
    ({"class_names": ["red", "green"]}, "names 2 classes but the model has 3 outputs"),
    ({"class_names": None}, "has no class_names"),
    ({"class_names": [1, 2, 3]}, "is not a non-empty text"),
    ({"class_names": {"a": 1}}, "not a list of names"),
    ({"class_names": ["red", "red", "blue"]}, "appears twice"),
    ({"class_names": ["red", "gr\neen", "blue"]}, "line break"),
    ({"class_names": ["red", "\ud800", "blue"]}, r"invalid one \(\\ud800\)"),
    ({"class_names": ["red", "\x1b[31mRED", "blue"]}, r"'\\x1b\[31mRED'"),
    ({"class_names": ["red", "a\x9bb", "blue"]}, "control character"),
    ({"image_size": 100_000}, "100000 pixels wide; tlgui accepts 16 to 2048"),
    ({"image_size": -3}, "accepts 16 to 2048"),
    ({"image_size": "32"}, r"image size as '32', which is not a whole number"),
    ({"image_size": True}, "True, which is not a whole number"),
    ({"image_size": 32.5}, "32.5, which is not a whole number"),
    ({"image_size": 2048}, "2048 pixels wide, but the model itself works at 32"),
    ({"backbone": ["x"] * 3}, "backbone is not a short text"),
])
def test_metadata_with_wrong_types_lengths_or_ranges_is_refused(
        good: Path, tmp_path: Path, change: dict[str, object], match: str) -> None:
    meta = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    _refused(_with_meta(good, tmp_path / "crafted.keras", meta), match)


def test_huge_metadata_is_refused_before_it_is_read(good: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    meta = {**BASE, "padding": "x" * (4 << 20)}
    crafted = _with_meta(good, tmp_path / "huge.keras", meta)
    read_sizes: list[int] = []
    real_read = zipfile.ZipExtFile.read

    def read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        if self.name == "tlgui.json":
            read_sizes.append(n)
        return real_read(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    _refused(crafted, "larger than|MiB")
    assert read_sizes == [], "the oversized member was read"


def test_deeply_nested_metadata_is_a_named_error(good: Path, tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    _refused(_with_meta(good, tmp_path / "deep.keras", deep), "nested")
    wide_deep = {**BASE, "x": json.loads("[" * 30 + "]" * 30)}
    _refused(_with_meta(good, tmp_path / "deep2.keras", wide_deep), "nested more than")


def test_zero_byte_truncated_and_garbage_files_are_refused(good: Path, tmp_path: Path,
                                                           private_tmp: Path) -> None:
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    _refused(empty, r"is empty \(0 bytes\)")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])
    _refused(truncated, "damaged")
    assert list(private_tmp.iterdir()) == []


def test_damaged_member_leaves_no_temporary_folder(good: Path, tmp_path: Path,
                                                   private_tmp: Path) -> None:
    # The weights member's bytes flipped in the middle: its checksum fails on reading.
    crafted = tmp_path / "flipped.keras"
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("model.weights.h5")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle:middle + 64] = bytes(64)
    crafted.write_bytes(bytes(data))
    _refused(crafted, "damaged")
    assert list(private_tmp.iterdir()) == []


def test_zip_bomb_member_is_refused_before_inflating(good: Path, tmp_path: Path,
                                                     private_tmp: Path) -> None:
    bomb = _rewrite(good, tmp_path / "bomb.keras", lambda n, d: d,
                    extra={"assets/padding.bin": bytes(64 << 20)},
                    compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(bomb) as zf:  # 64 MiB of zeros deflate to a few hundred KiB
        assert zf.getinfo("assets/padding.bin").compress_size < 1 << 20
    _refused(bomb, "zip bomb")
    assert list(private_tmp.iterdir()) == []


def test_loading_leaves_the_temporary_folder_as_it_was(good: Path,
                                                       private_tmp: Path) -> None:
    loaded = Predictor.load(good)
    assert loaded.class_names == ("red", "green", "blue") and loaded.image_size == 32
    assert list(private_tmp.iterdir()) == []


@pytest.mark.timeout(60, method="signal")
def test_a_pipe_or_a_device_named_keras_is_refused_without_hanging(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.keras"
    os.mkfifo(pipe)
    _refused(pipe, r"not a regular file \(a named pipe\)")
    device = tmp_path / "zero.keras"
    device.symlink_to("/dev/zero")
    _refused(device, r"not a regular file \(a character device\)")


def test_models_that_are_not_image_classifiers_are_refused(tmp_path: Path) -> None:
    import keras

    from tlgui.core.model_file import save_keras

    inputs = keras.Input((4,))
    flat = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    path = save_keras(flat, tmp_path / "flat.keras", ("a", "b"))
    _refused(path, "not an image classifier")
    images = keras.Input((5000, 5000, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(images)
    huge = keras.Model(images, keras.layers.Dense(2, activation="softmax")(pooled))
    plain = tmp_path / "plain_huge.keras"
    huge.save(plain)  # no tlgui metadata: the size comes from the input shape
    _refused(plain, "5000 pixels wide")


def test_a_plain_keras_model_says_it_has_no_class_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    from tests.imagegen import make_dataset

    images = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(images))
    model = keras.Model(images, keras.layers.Dense(2, activation="softmax")(pooled))
    plain = tmp_path / "plain.keras"
    model.save(plain)
    photos = make_dataset(tmp_path / "photos", classes=("red",), per_class=2)
    assert main(["predict", str(plain), str(photos)]) == 0
    out = capsys.readouterr().out
    assert "holds no class names" in out and "class_0" in out


def test_crafted_model_on_the_command_line_is_one_line(good: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from tests.imagegen import make_dataset

    crafted = _with_meta(good, tmp_path / "crafted.keras", {**BASE, "image_size": 10**9})
    photos = make_dataset(tmp_path / "photos", classes=("red",), per_class=1)
    assert main(["predict", str(crafted), str(photos)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: crafted.keras")
