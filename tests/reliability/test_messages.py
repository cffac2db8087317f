"""Messages: no traceback on the terminal for anything a user can cause; the user's file
and the reason in words; CSV cells that a spreadsheet cannot run."""

from __future__ import annotations

import builtins
import csv
import errno
import io
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.imagegen import make_dataset
from tests.reliability.helpers import tiny_model_file
from tlgui.cli import main
from tlgui.core import export

pytestmark = pytest.mark.timeout(180, method="signal")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture
def console_handler() -> Any:
    """A console handler on the root logger, as a library calling ``logging.warning``
    installs one; tlgui's tracebacks must not reach it."""
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_a_log_folder_that_is_a_file_prints_no_traceback(tmp_path: Path) -> None:
    crafted = tmp_path / "crafted.keras"
    with zipfile.ZipFile(crafted, "w") as zf:  # loads far enough to fail inside Keras
        zf.writestr("config.json", "{}")
        zf.writestr("metadata.json", "{}")
    photos = make_dataset(tmp_path / "photos", classes=("red",), per_class=1)
    not_a_folder = tmp_path / "logs"
    not_a_folder.write_text("a file where the log folder should be")
    env = {**os.environ, "TLGUI_LOG_DIR": str(not_a_folder)}
    proc = subprocess.run([sys.executable, "-m", "tlgui", "predict", str(crafted),
                           str(photos)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error: crafted.keras" in proc.stderr


def test_savedmodel_export_on_a_full_disk_names_the_export(
        model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, console_handler: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    def full(archive: Any, folder: Path) -> None:
        # TensorFlow's own words, naming its temporary file.
        raise RuntimeError(f"{{function_node SaveV2}} {folder}/variables/part-0.tempstate1; "
                           "No space left on device [Op:SaveV2]")

    monkeypatch.setattr(export, "_write_archive", full)
    out = tmp_path / "exported"
    assert main(["export", str(model), "--format", "savedmodel", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert str(out) in err and "the disk is full" in err
    assert ".tlgui-tmp" not in err and "tempstate" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_tflite_export_on_a_full_disk_names_the_export(
        model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, console_handler: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    import tensorflow as tf

    class Converter:
        def __init__(self) -> None:
            self.optimizations: list[Any] = []

        def convert(self) -> bytes:
            return b"tflite bytes"

    real_write_bytes = Path.write_bytes

    def write_bytes(self: Path, data: Any) -> int:
        if self.name.startswith(".tlgui-tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(self, data)

    monkeypatch.setattr(export, "_write_archive", lambda archive, folder: None)
    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model",
                        staticmethod(lambda path: Converter()))
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    out = tmp_path / "m.tflite"
    assert main(["export", str(model), "--format", "tflite", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Errno" not in err, err
    assert "m.tflite" in err and "the disk is full" in err
    assert list(tmp_path.iterdir()) == []


def test_csv_on_a_full_disk_names_the_csv(model: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    photos = make_dataset(tmp_path / "photos", per_class=1)
    out = tmp_path / "results" / "predictions.csv"
    real = {name: getattr(Path, name) for name in ("write_bytes", "write_text")}

    def full(name: str) -> Any:
        def write(self: Path, data: Any, *args: Any, **kwargs: Any) -> int:
            if self.name.startswith(".tlgui-tmp-"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real[name](self, data, *args, **kwargs)
        return write

    class FullFile(io.BufferedWriter):
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    real_open = builtins.open

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        # The CSV is written a batch at a time into its temp file.
        if "w" in mode and os.path.basename(os.fspath(file)).startswith(".tlgui-tmp-"):
            return FullFile(real_open(file, "wb", buffering=0))
        return real_open(file, mode, *args, **kwargs)

    for name in real:
        monkeypatch.setattr(Path, name, full(name))
    monkeypatch.setattr(builtins, "open", full_open)
    assert main(["predict", str(model), str(photos), "--csv", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Errno" not in err and "Traceback" not in err, err
    assert str(out) in err and "the disk is full" in err
    assert not out.parent.exists()  # the folder made for it is removed too


def test_csv_in_a_read_only_folder_names_the_csv_not_a_temp_file(
        model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    photos = make_dataset(tmp_path / "photos", per_class=1)
    folder = tmp_path / "read_only"
    folder.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dir") is not None and Path(kwargs["dir"]) == folder:
            raise OSError(errno.EROFS, "Read-only file system",
                          str(folder / ".tlgui-tmp-abc123.csv"))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    assert main(["predict", str(model), str(photos), "--csv", str(folder / "p.csv")]) == 1
    err = capsys.readouterr().err
    assert ".tlgui-tmp" not in err and "Traceback" not in err, err
    assert str(folder) in err and "read-only" in err


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A model with control characters in its class names (a tab, a line break) is refused
    # on loading (test_model_files.py); these are the formula starts a name can have.
    classes = ("=SUM(A1)", "+cmd", "-1", "@x")
    model = tiny_model_file(tmp_path / "m.keras", classes)
    folder = tmp_path / "work"
    folder.mkdir()
    from tests.imagegen import make_image

    for name in ("=HYPERLINK(1).jpg", "+a.jpg", "-b.jpg", "@c.jpg", "plain.jpg"):
        make_image((200, 40, 40), (40, 40), 1).save(folder / name)
    monkeypatch.chdir(folder)  # relative paths, as typed: the cell begins with the name
    names = sorted(p.name for p in folder.iterdir())
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), "--csv", str(out), "--top-k", "5", "--", *names]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    text_cells = [c for row in table[1:] for i, c in enumerate(row)
                  if i in (0, 1) or (i >= 3 and i % 2 == 1 and i < len(row) - 1)]
    assert text_cells, table
    for cell in text_cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'=HYPERLINK(1).jpg" in [row[0] for row in table]
    assert {"'" + c for c in classes} <= set(text_cells)
    assert "plain.jpg" in [row[0] for row in table]
    from tlgui.core.prediction import spreadsheet_safe

    assert spreadsheet_safe("\rr") == "'\rr" and spreadsheet_safe("a=b") == "a=b"


def test_undecodable_file_names_are_written_and_printed(
        model: Path, tmp_path: Path) -> None:
    from tests.imagegen import make_image

    folder = tmp_path / "photos"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")
    make_image((200, 40, 40), (40, 40), 1).save(folder / name)
    make_image((40, 40, 200), (40, 40), 2).save(folder / "fine.jpg")
    out = tmp_path / "p.csv"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    for extra, said in ((["--csv", str(out)], "not valid UTF-8"), ([], "caf\\xe9.jpg\t")):
        proc = subprocess.run([sys.executable, "-m", "tlgui", "predict", str(model),
                               str(folder), *extra], capture_output=True, timeout=120,
                              env=env)
        text = proc.stdout.decode("utf-8") + proc.stderr.decode("utf-8")
        assert proc.returncode == 0, text
        assert "Traceback" not in text and said in text, text
    rows = list(csv.reader(out.read_text("utf-8").splitlines()))
    assert len(rows) == 3 and any(r[0].endswith("caf\\xe9.jpg") for r in rows)
