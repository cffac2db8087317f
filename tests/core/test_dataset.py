"""Scanning: layouts, formats, problems, warnings, the split, and no writes to the data."""

from __future__ import annotations

import hashlib
import io
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.imagegen import make_dataset, make_image
from tests.reliability.helpers import deny_reading
from tlgui.core import imageio
from tlgui.core.config import SplitConfig
from tlgui.core.dataset import scan
from tlgui.core.errors import DatasetError


def tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p.relative_to(root))] = "dir" if p.is_dir() else "link"
    return out


def reasons(ds) -> dict[str, str]:
    return {p.path.name: p.reason for p in ds.problems}


def test_class_folders_split_is_stratified_and_deterministic(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=20)
    a = scan(root)
    b = scan(root)
    assert a.layout == "class_folders"
    assert a.class_names == ("blue", "green", "red")
    assert a.counts("validation") == {"blue": 4, "green": 4, "red": 4}
    assert [s.path for s in a.validation] == [s.path for s in b.validation]
    other = scan(root, SplitConfig(validation_fraction=0.2, seed=99))
    assert {s.path for s in other.validation} != {s.path for s in a.validation}
    assert not {s.path for s in a.train} & {s.path for s in a.validation}


def test_split_folders_and_deeper_subfolders(tmp_path: Path) -> None:
    for part, n in (("train", 10), ("validation", 3), ("test", 2)):
        make_dataset(tmp_path / "d" / part, classes=("red", "blue"), per_class=n, seed=n)
    deep = tmp_path / "d" / "train" / "red" / "more" / "deeper"
    deep.mkdir(parents=True)
    make_image((200, 40, 40), (48, 48), 5).save(deep / "x.png")
    ds = scan(tmp_path / "d")
    assert ds.layout == "split_folders"
    assert ds.counts("train") == {"blue": 10, "red": 11}
    assert ds.counts("validation") == {"blue": 3, "red": 3}
    assert ds.counts("test") == {"blue": 2, "red": 2}


def test_every_supported_format_and_mode_becomes_rgb(tmp_path: Path) -> None:
    d = tmp_path / "d" / "a"
    d.mkdir(parents=True)
    base = make_image((120, 80, 40), (64, 48), 1)
    base.save(d / "jpeg.jpg")
    base.save(d / "png.png")
    base.save(d / "bmp.bmp")
    base.save(d / "webp.webp")
    base.save(d / "tiff.tif")
    frames = [base, make_image((10, 200, 10), (64, 48), 2)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:])
    base.convert("L").save(d / "gray.png")
    base.convert("P").save(d / "palette.png", transparency=0)
    base.convert("RGBA").save(d / "rgba.png")
    base.convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)).save(
        d / "sixteen.png")
    make_dataset(tmp_path / "d", classes=("blue",), per_class=3)
    ds = scan(tmp_path / "d")
    assert not ds.problems
    names = {s.path.name for s in (*ds.train, *ds.validation)}
    assert len(names) == 14
    for s in (*ds.train, *ds.validation):
        arr = imageio.decode_rgb(s.path)
        assert arr.dtype == np.uint8 and arr.shape[2] == 3, s.path
    sixteen = imageio.decode_rgb(d / "sixteen.png")
    assert sixteen.max() > 200 and sixteen.min() < 10  # scaled down, not clipped to 255


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 40))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    arr = imageio.decode_rgb(tmp_path / "r.jpg")
    assert arr.shape[:2] == (80, 40)
    assert arr[5, 20, 2] > 200  # blue half now on top


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=10)
    bad = root / "red"
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.jpg").write_text("hello, not an image")
    (bad / "page.png").write_text("<html><body>404</body></html>")
    make_image((1, 2, 3), (16, 16), 0).save(bad / "tiny.png")
    buf = io.BytesIO()
    make_image((1, 2, 3), (40, 40), 0).save(buf, "ICO")
    (bad / "icon.ico").write_bytes(buf.getvalue())
    # A PNG header claiming 30000 x 30000 pixels: refused before any decode.
    big = io.BytesIO()
    Image.new("L", (1, 1)).save(big, "PNG")
    data = bytearray(big.getvalue())
    data[16:24] = (30000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    (bad / "bomb.png").write_bytes(bytes(data))
    (bad / "notes.txt").write_text("field notes")
    for litter in (".DS_Store", "Thumbs.db", "desktop.ini", "._img_000.jpg", ".hidden.jpg"):
        (bad / litter).write_bytes(b"\0\0junk")
    ds = scan(root)
    r = reasons(ds)
    assert r["empty.jpg"].startswith("empty file")
    assert r["text.jpg"].startswith("not an image")
    assert r["page.png"].startswith("not an image")
    assert r["tiny.png"].startswith("too small")
    assert r["icon.ico"] == "unsupported format ICO"
    assert r["bomb.png"].startswith("decompression bomb")
    assert r["notes.txt"].startswith("not an image")
    assert not {".DS_Store", "Thumbs.db", "desktop.ini", "._img_000.jpg", ".hidden.jpg"} & set(r)
    assert ds.counts("all") == {"blue": 10, "green": 10, "red": 10}


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_dataset(tmp_path / "d", per_class=10)
    locked = root / "red" / "img_000.jpg"
    deny_reading(monkeypatch, locked)  # tests run as root, where chmod 000 still reads
    ds = scan(root)
    assert reasons(ds)["img_000.jpg"] == "permission denied"


def test_fewer_than_two_classes_is_a_clear_error(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", classes=("red",), per_class=5)
    (root / "empty_class").mkdir()
    with pytest.raises(DatasetError, match="at least 2 class folders"):
        scan(root)
    with pytest.raises(DatasetError, match="does not exist"):
        scan(tmp_path / "missing")


def test_warnings_small_class_imbalance_conflict(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", classes=("red", "green"), per_class=60)
    make_dataset(root, classes=("blue",), per_class=5)
    (root / "green" / "dup.jpg").write_bytes((root / "red" / "img_001.jpg").read_bytes())
    (root / "empty").mkdir()
    ds = scan(root)
    text = "\n".join(ds.warnings)
    assert "Class 'blue' has only 5 image(s)" in text
    assert "imbalanced" in text
    assert "Label conflict" in text and "dup.jpg" in text
    assert "'empty' has no usable images" in text
    assert ds.class_names == ("blue", "green", "red")


def test_scan_never_writes_into_the_dataset(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=10)
    before = tree_digest(root)
    scan(root)
    assert tree_digest(root) == before


def test_ten_thousand_files_scan_in_seconds(tmp_path: Path) -> None:
    buf = io.BytesIO()
    make_image((10, 20, 30), (48, 48), 0).save(buf, "PNG")
    data = buf.getvalue()
    for c in range(4):
        d = tmp_path / "d" / f"class{c}"
        d.mkdir(parents=True)
        for i in range(2500):
            (d / f"{i}.png").write_bytes(data)
    t0 = time.perf_counter()
    ds = scan(tmp_path / "d")
    seconds = time.perf_counter() - t0
    assert len(ds.train) + len(ds.validation) == 10_000
    print(f"scanned 10,000 files in {seconds:.2f}s")
    assert seconds < 15


def test_train_and_test_folders_without_validation_are_a_split_layout(tmp_path: Path) -> None:
    """train/ + test/ is a split layout whose validation is held back from train/, never
    two classes named "train" and "test"."""
    from tlgui.engine.codec import dataset_from_data, dataset_to_data

    make_dataset(tmp_path / "d" / "train", per_class=10)
    make_dataset(tmp_path / "d" / "test", per_class=3, seed=5)
    ds = scan(tmp_path / "d")
    assert ds.layout == "split_folders" and ds.validation_held_back
    assert ds.class_names == ("blue", "green", "red")
    assert len(ds.test) == 9 and len(ds.validation) > 0
    assert len(ds.train) + len(ds.validation) == 30
    test_paths = {s.path for s in ds.test}
    assert all(s.path.parts[-3] == "train" for s in ds.validation)
    assert not test_paths & {s.path for s in ds.train + ds.validation}
    back, _ = dataset_from_data(dataset_to_data(ds))
    assert back.validation_held_back
    # With its own validation/ folder nothing is held back.
    make_dataset(tmp_path / "d" / "validation", per_class=2, seed=9)
    again = scan(tmp_path / "d")
    assert not again.validation_held_back and len(again.validation) == 6
