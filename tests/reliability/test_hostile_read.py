"""Reading what tlgui did not write itself, as a hostile tester planted it.

The pixel cache, a model's metadata, the run folders and the names printed on the
terminal: an odd entry is dropped or listed with its reason, nothing hangs or raises,
and nothing printed can drive the terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tests.reliability.helpers import tiny_model_file
from tests.runfolders import make_run
from tlgui.backend_import import NATIVE_LOG_LEVEL, quiet_native_logs
from tlgui.cli import main
from tlgui.core.config import TrainConfig
from tlgui.core.dataset import Sample, scan
from tlgui.core.entries import control_character, printable, printable_lines
from tlgui.core.json_bounds import MAX_DEPTH
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.run_catalog import NOTES_FILE, read_record
from tlgui.core.runs import read_json

pytestmark = pytest.mark.timeout(60, method="signal")

ESCAPES = "\x1b[31mRED\x1b]0;pwned\x07"


# -- 1: anything planted in the pixel cache is a bad entry, never read blindly -------------

@pytest.fixture
def cached(tmp_path: Path) -> tuple[PixelCache, Sample, Path, np.ndarray]:
    """A cache holding one image at 32 px: (cache, sample, its entry, its pixels)."""
    ds = scan(make_dataset(tmp_path / "d", per_class=2, size=(40, 40)))
    sample = ds.train[0]
    cache = PixelCache(tmp_path / "cache")
    pixels = cache.get(sample, 32)
    entry = cache._entry(cache.key(sample, 32), 32)
    assert entry.is_file()
    return cache, sample, entry, pixels


def _plant_other_entry(cache: PixelCache, tmp_path: Path) -> Path:
    """A valid entry of another image, outside the cache."""
    other = PixelCache(tmp_path / "elsewhere")
    sample = Sample(tmp_path / "x.png", 0, 1, 1)
    other.write(sample, 32, np.full((32, 32, 3), 7, np.uint8))
    return other._entry(other.key(sample, 32), 32)


@pytest.mark.parametrize("kind", ["fifo", "empty folder", "folder", "link to entry",
                                  "link to /dev/zero", "oversized", "short",
                                  "trailing bytes"])
def test_planted_cache_entry_is_dropped_and_redecoded(
        cached: tuple[PixelCache, Sample, Path, np.ndarray], tmp_path: Path,
        kind: str) -> None:
    cache, sample, entry, pixels = cached
    body = entry.read_bytes()
    entry.unlink()
    if kind == "fifo":
        os.mkfifo(entry)
    elif kind == "empty folder":
        entry.mkdir()
    elif kind == "folder":
        entry.mkdir()
        (entry / "x").write_bytes(b"x")
    elif kind == "link to entry":
        entry.symlink_to(_plant_other_entry(cache, tmp_path))
    elif kind == "link to /dev/zero":
        entry.symlink_to("/dev/zero")
    elif kind == "oversized":
        # A valid header, then far more bytes than any entry: read no further than needed.
        with open(entry, "wb") as fh:
            fh.write(body[:16])
            fh.truncate(2**30)  # sparse: costs no disk
    elif kind == "short":
        entry.write_bytes(body[:10])
    elif kind == "trailing bytes":
        entry.write_bytes(body + b"\0")

    fresh = PixelCache(cache.root)
    regular = kind in ("oversized", "short", "trailing bytes")
    assert fresh.contains(sample, 32) == regular  # only a regular file counts as cached
    again = fresh.get(sample, 32)  # must not block on the pipe or read 1 GiB
    assert np.array_equal(again, pixels)
    assert fresh.stats.corrupt == 1 and fresh.stats.decoded == 1
    if kind != "folder":  # a folder with files in it is left where it is
        assert entry.is_file() and not entry.is_symlink()
        assert fresh.read(sample, 32) is not None
    assert os.path.lexists(_plant_other_entry(cache, tmp_path))  # a link target stays


def test_entry_of_another_shape_is_not_returned(
        cached: tuple[PixelCache, Sample, Path, np.ndarray]) -> None:
    cache, sample, _, _ = cached
    cache.write(sample, 32, np.zeros((16, 16, 3), np.uint8))  # a valid entry, wrong shape
    assert cache.read(sample, 32) is None and cache.stats.corrupt == 1


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_carry_over_skips_planted_entries(
        cached: tuple[PixelCache, Sample, Path, np.ndarray], tmp_path: Path,
        kind: str) -> None:
    cache, sample, entry, _ = cached
    entry.unlink()
    if kind == "fifo":
        os.mkfifo(entry)
    else:
        entry.symlink_to(_plant_other_entry(cache, tmp_path))
    (cache.root / "²").mkdir()  # a digit to str.isdigit, not to int()
    (cache.root / ("9" * 200)).mkdir()
    moved = Sample(tmp_path / "moved.jpg", 0, sample.size, sample.mtime_ns)
    assert cache.carry_over(sample, moved) == 0
    assert not cache.contains(moved, 32)


def test_carry_over_copies_a_checked_entry(
        cached: tuple[PixelCache, Sample, Path, np.ndarray], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache, sample, _, pixels = cached

    def no_links(src: object, dst: object) -> None:
        raise OSError("links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    moved = Sample(tmp_path / "moved.jpg", 0, sample.size, sample.mtime_ns)
    assert cache.carry_over(sample, moved) == 1
    assert np.array_equal(cache.read(moved, 32), pixels)


# -- 5: printable escapes what drives a terminal, and stays readable -----------------------

@pytest.mark.parametrize(("raw", "shown"), [
    ("cat.jpg", "cat.jpg"),
    ("été 👨\u200d👩\u200d👧.jpg", "été 👨\u200d👩\u200d👧.jpg"),
    (ESCAPES, "\\x1b[31mRED\\x1b]0;pwned\\x07"),
    ("a\x9bb\x7f", "a\\x9bb\\x7f"),  # C1 CSI and DEL
    ("line\nbreak\rtab\t", "line\\x0abreak\\x0dtab\\x09"),
    ("x\ud800y", "x\\ud800y"),  # a lone surrogate that os.fsencode cannot encode
    (os.fsdecode(b"bad\xff.jpg"), "bad\\xff.jpg"),
    ("gpj.\u202eexe", "gpj.\\u202eexe"),  # a bidi override
    ("C:\\dir", "C:\\dir"),
])
def test_printable_escapes_controls(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(shown) == shown  # escaping twice changes nothing
    printable(raw).encode("utf-8")  # never raises
    assert (control_character(raw) is None) == (raw == shown)


def test_printable_lines_keeps_line_breaks() -> None:
    assert printable_lines(f"first {ESCAPES}\nsecond") == \
        "first \\x1b[31mRED\\x1b]0;pwned\\x07\nsecond"


# -- 12, 18 and 5: run folders read back, damaged or planted ------------------------------

@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TLGUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "runs"


def _edit_json(path: Path, change: dict[str, object]) -> None:
    data = json.loads(path.read_text("utf-8"))
    data.update(change)
    path.write_text(json.dumps(data), "utf-8")


@pytest.mark.parametrize("name", ["config.json", "status.json", "history.json",
                                  "classes.json", "evaluation.json"])
def test_deeply_nested_run_file_is_a_reason(runs_root: Path, tmp_path: Path, name: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run(runs_root, "20261130-100000-d", tmp_path / "d", recalls=(1.0, 0.8, 0.6))
    make_run(runs_root, "20261130-110000-d", tmp_path / "d")
    (a / name).write_bytes(b"[" * 100_000 + b"]" * 100_000)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "20261130-100000-d" in out and "20261130-110000-d" in out
    assert main(["runs", "show", a.name]) == 0
    assert main(["runs", "compare", a.name, "20261130-110000-d"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_nesting_that_parses_is_still_refused(tmp_path: Path) -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH + 5):
        deep = {"k": deep}
    (tmp_path / "config.json").write_text(json.dumps(deep), "utf-8")
    with pytest.raises(ValueError, match="nested more than"):
        read_json(tmp_path / "config.json")


def test_wrong_typed_status_fields_are_unknown(runs_root: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(runs_root, "20261130-100000-d", tmp_path / "d",
                   config=TrainConfig(weights="none", image_size=32, backbone="MobileNetV2"))
    _edit_json(run / "status.json", {"state": {"a": 1}, "backbone": ["x"],
                                     "started": {"b": 2}, "error": ["e"]})
    (run / NOTES_FILE).write_text(json.dumps({"name": {"n": 1}, "note": [1]}), "utf-8")
    r = read_record(run)
    assert r.state == "unknown" and "state tlgui does not know" in r.reason
    assert r.backbone == "MobileNetV2"  # config.json's, status.json's is not a name
    assert r.label == "" and r.note == "" and r.image_size == 32
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "[" not in out


def test_unreadable_config_shows_no_image_size(runs_root: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(runs_root, "20261130-100000-d", tmp_path / "d",
                   config=TrainConfig(weights="none", image_size=None))
    (run / "config.json").unlink()
    (run / "config.json").mkdir()
    r = read_record(run)
    assert r.image_size is None and "config.json is not readable" in r.reason
    assert main(["runs"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[4] == "?"  # SIZE, not a guess from MobileNetV2's default


def test_runs_output_escapes_planted_names(runs_root: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    evil = ESCAPES
    a = make_run(runs_root, "20261130-100000-d", tmp_path / f"d{evil}",
                 classes=("blue", f"green{evil}", "red"), recalls=(1.0, 0.8, 0.6))
    b = make_run(runs_root, "20261130-110000-d", tmp_path / "d")
    (a / NOTES_FILE).write_text(json.dumps({"name": f"n{evil}", "note": f"a{evil}\nb\x9b"}),
                                "utf-8")
    _edit_json(a / "config.json", {f"key{evil}": f"value{evil}"})
    _edit_json(a / "status.json", {"state": "failed", "error": f"boom{evil}"})
    for argv in (["runs"], ["runs", "show", a.name], ["runs", "compare", a.name, b.name]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, argv
        assert "\\x1b[31mRED" in out, argv


def test_scan_output_escapes_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "d", per_class=3, size=(32, 32))
    (data / "red" / f"x{ESCAPES}.jpg").write_bytes(b"not an image")
    (data / f"cls{ESCAPES}").mkdir()
    assert main(["scan", str(data)]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "\\x1b[31mRED" in captured.out


# -- 19: TensorFlow's C++ log lines stay off the terminal ---------------------------------

@pytest.mark.timeout(240, method="signal")
def test_predict_prints_no_native_log_lines(tmp_path: Path) -> None:
    model = tiny_model_file(tmp_path / "m.keras")
    images = make_dataset(tmp_path / "d", classes=("red",), per_class=2, size=(32, 32))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "tlgui", "predict", str(model),
                           str(images)], capture_output=True, text=True, timeout=200,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "img_000.jpg" in proc.stdout
    # absl's format: a severity letter, four digits, a time, a thread, file:line].
    native = [line for line in proc.stderr.splitlines()
              if re.match(r"[IWEF]\d{4} \d\d:\d\d:\d\d", line)]
    assert not native, proc.stderr


def test_a_users_native_log_level_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_native_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    quiet_native_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == NATIVE_LOG_LEVEL
