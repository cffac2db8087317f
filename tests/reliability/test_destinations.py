"""Where tlgui writes: never an input, the model in use, a dataset, or a file it did not
create unless asked; every destination checked before the long work.

Each test drives the command line as a user would and then checks the files: what was
refused is byte-identical, what was asked for is written. Tests that need the new API
import it inside the test, so the command-line tests run on any version.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.imagegen import make_dataset
from tests.reliability.helpers import snapshot, tiny_model_file, tree_digest
from tlgui.cli import main

TRAIN_TINY = ["--weights", "none", "--image-size", "32", "--epochs", "1",
              "--fine-tune-epochs", "0", "--batch-size", "8"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture
def model(model_file: Path, tmp_path: Path) -> Path:
    """A private copy of the model: a test may try to overwrite it."""
    copy = tmp_path / "models" / "m.keras"
    copy.parent.mkdir()
    copy.write_bytes(model_file.read_bytes())
    return copy


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "photos", per_class=3)


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


# -- predict --csv ----------------------------------------------------------------------


def test_csv_onto_the_model_in_use_is_refused(model: Path, photos: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    before = model.read_bytes()
    assert main(["predict", str(model), str(photos), "--csv", str(model)]) == 1
    assert "is the model being used" in _err(capsys)
    assert model.read_bytes() == before
    # Asking to overwrite does not make it allowed.
    assert main(["predict", str(model), str(photos), "--csv", str(model),
                 "--overwrite"]) == 1
    assert model.read_bytes() == before


def test_csv_onto_an_input_image_is_refused(model: Path, photos: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a, b = photos / "red" / "img_000.jpg", photos / "red" / "img_001.jpg"
    before = snapshot(photos)
    assert main(["predict", str(model), str(a), str(b), "--csv", str(b)]) == 1
    assert "one of the input files" in _err(capsys)
    assert snapshot(photos) == before


def test_csv_inside_an_input_folder_is_refused(model: Path, photos: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(photos)
    for target in (photos / "green" / "img_000.jpg", photos / "results.csv"):
        assert main(["predict", str(model), str(photos), "--csv", str(target),
                     "--overwrite"]) == 1
        assert "a dataset or input folder" in _err(capsys)
    assert snapshot(photos) == before


def test_csv_through_a_link_to_an_input_is_refused(model: Path, photos: Path,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    a = photos / "blue" / "img_002.jpg"
    soft, hard = tmp_path / "soft.csv", tmp_path / "hard.csv"
    soft.symlink_to(a)
    os.link(a, hard)
    before = snapshot(photos)
    for link in (soft, hard):
        assert main(["predict", str(model), str(a), "--csv", str(link), "--overwrite"]) == 1
        assert "one of the input files" in _err(capsys)
    assert snapshot(photos) == before
    assert soft.is_symlink() and os.path.samefile(hard, a)


def test_existing_csv_is_replaced_only_when_asked(model: Path, photos: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.csv"
    out.write_text("the user's own table\n")
    assert main(["predict", str(model), str(photos), "--csv", str(out)]) == 1
    err = _err(capsys)
    assert "already exists" in err and "--overwrite" in err
    assert out.read_text() == "the user's own table\n"
    assert main(["predict", str(model), str(photos), "--csv", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("path,class,probability")


@pytest.mark.timeout(60, method="signal")
def test_csv_onto_a_pipe_or_a_folder_is_refused(model: Path, photos: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pipe, folder = tmp_path / "pipe.csv", tmp_path / "folder.csv"
    os.mkfifo(pipe)
    folder.mkdir()
    for target, kind in ((pipe, "a named pipe"), (folder, "a folder")):
        assert main(["predict", str(model), str(photos), "--csv", str(target),
                     "--overwrite"]) == 1
        assert f"is {kind}, not a file" in _err(capsys)
    assert pipe.is_fifo() and folder.is_dir() and not list(folder.iterdir())


# -- predict --sort-into ----------------------------------------------------------------


def test_sort_into_the_folder_of_file_inputs_is_refused(
        model: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted((photos / "red").iterdir())]
    before = snapshot(photos)
    for dest in (photos / "red" / "sorted", photos / "red", photos):
        assert main(["predict", str(model), *files, "--sort-into", str(dest)]) == 1
        assert "overlaps the input folder" in _err(capsys)
    assert snapshot(photos) == before


def test_sort_into_class_folders_linked_into_an_input_is_refused(
        model: Path, photos: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "sorted"
    dest.mkdir()
    for name in ("red", "green", "blue", "_unsure"):
        (dest / name).symlink_to(photos / "red", target_is_directory=True)
    before = snapshot(photos)
    assert main(["predict", str(model), str(photos), "--sort-into", str(dest)]) == 1
    assert "a dataset or input folder" in _err(capsys)
    assert snapshot(photos) == before


# -- export -----------------------------------------------------------------------------


def test_export_never_replaces_a_labels_file_it_did_not_write(
        model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = tmp_path / "deploy"
    shared.mkdir()
    labels = shared / "labels.txt"
    labels.write_text("cat\ndog\n")  # another model's labels
    for fmt, name in (("onnx", "m.onnx"), ("tflite", "m.tflite")):
        assert main(["export", str(model), "--format", fmt, "--out",
                     str(shared / name)]) == 1
        err = _err(capsys)
        assert "labels.txt already exists" in err and "--overwrite" in err
    assert labels.read_text() == "cat\ndog\n"
    assert sorted(p.name for p in shared.iterdir()) == ["labels.txt"]
    assert main(["export", str(model), "--format", "onnx", "--out", str(shared / "m.onnx"),
                 "--overwrite"]) == 0
    assert labels.read_text() == "red\ngreen\nblue\n"


def test_export_into_its_own_run_folder_never_replaces_the_model(
        model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = model.parent
    (run / "model.keras").write_bytes(model.read_bytes())
    before = tree_digest(run)
    for extra in ([], ["--overwrite"]):
        assert main(["export", str(run), "--format", "keras", "--out", str(run),
                     *extra]) == 1
        assert "is the model being used" in _err(capsys)
    assert tree_digest(run) == before


def test_export_onto_an_existing_file_is_a_clear_error(
        model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert main(["export", str(model), "--format", "onnx", "--out", str(notes)]) == 1
    err = _err(capsys)
    assert "FileExistsError" not in err and "Errno" not in err
    assert "notes.txt is a regular file" in err and "ending in .onnx" in err
    assert notes.read_text() == "mine"
    out = tmp_path / "again.keras"
    assert main(["export", str(model), "--format", "keras", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main(["export", str(model), "--format", "keras", "--out", str(out)]) == 1
    assert "already exists" in _err(capsys) and out.read_bytes() == first
    assert main(["export", str(model), "--format", "keras", "--out", str(out),
                 "--overwrite"]) == 0


# -- train --out and the run folder -----------------------------------------------------


def _runs(home: Path) -> list[Path]:
    runs = home / "data" / "runs"
    return sorted(runs.iterdir()) if runs.is_dir() else []


def test_train_destinations_are_checked_before_training(
        isolated_dirs: Path, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(photos)
    existing = tmp_path / "kept.keras"
    existing.write_bytes(b"the user's model")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        folder = kwargs.get("dir")
        if folder is not None and Path(folder) == read_only:
            raise OSError(errno.EROFS, "Read-only file system",
                          str(read_only / ".tlgui-tmp-x"))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    cases = [(photos / "red" / "model.keras", "a dataset or input folder"),
             (tmp_path / "model.h5", "must end in .keras"),
             (read_only / "m.keras", "read-only"),
             (existing, "already exists")]
    for out, message in cases:
        assert main(["train", str(photos), *TRAIN_TINY, "--out", str(out)]) == 1, out
        err = _err(capsys)
        assert message in err, (out, err)
        assert "Traceback" not in err
        assert _runs(isolated_dirs) == [], f"training started for {out}"
    assert existing.read_bytes() == b"the user's model"
    assert not list(read_only.iterdir())
    assert snapshot(photos) == before
    monkeypatch.undo()


def test_runs_are_never_written_inside_the_dataset(
        photos: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TLGUI_DATA_DIR", str(photos / "red" / "tlgui-data"))
    before = snapshot(photos)
    assert main(["train", str(photos), *TRAIN_TINY]) == 1
    assert "a dataset or input folder" in _err(capsys)
    assert snapshot(photos) == before


def test_train_out_replaces_an_existing_file_when_asked(
        isolated_dirs: Path, photos: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.keras"
    out.write_bytes(b"old")
    assert main(["train", str(photos), *TRAIN_TINY, "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:2] == b"PK" and len(_runs(isolated_dirs)) == 1


# -- the rules themselves ---------------------------------------------------------------


def test_check_output_rules(tmp_path: Path, photos: Path, model: Path) -> None:
    from tlgui.core.destinations import check_folder_output, check_output
    from tlgui.core.errors import ConfigError, DestinationExists, UnsafeDestination

    image = photos / "red" / "img_000.jpg"
    free = tmp_path / "new" / "deeper" / "out.csv"
    assert check_output(free, inputs=[photos], model=model) == free
    assert not free.parent.exists()  # checking creates nothing
    with pytest.raises(UnsafeDestination) as info:
        check_output(image, inputs=[photos], overwrite=True)
    assert info.value.conflict == photos and isinstance(info.value, ConfigError)
    with pytest.raises(UnsafeDestination, match="model being used"):
        check_output(model, model=model, overwrite=True)
    with pytest.raises(DestinationExists) as exists:
        check_output(model)
    assert exists.value.path == model and "m.keras" in str(exists.value)
    assert check_output(model, created_by_tlgui=True) == model
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(UnsafeDestination, match="not a folder"):
        check_output(blocker / "sub" / "out.csv")
    with pytest.raises(UnsafeDestination, match="holds"):
        check_folder_output(photos.parent, inputs=[photos])
    assert check_folder_output(photos.parent, inputs=[photos], may_hold_inputs=True)
    assert not [p for p in tmp_path.rglob(".tlgui-tmp-*")]


def test_a_file_appearing_during_the_write_is_not_replaced(tmp_path: Path) -> None:
    from tlgui.core.atomic import atomic_path
    from tlgui.core.errors import DestinationExists

    target = tmp_path / "out.csv"

    def write() -> None:
        with atomic_path(target, replace=False) as tmp:
            tmp.write_text("tlgui's")
            target.write_text("written meanwhile by the user")

    with pytest.raises(DestinationExists):
        write()
    assert target.read_text() == "written meanwhile by the user"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


# -- found by trying to break it ---------------------------------------------------------


def test_a_link_to_a_device_is_never_replaced(model: Path, photos: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "stdout.csv"
    link.symlink_to("/dev/null")  # as /dev/stdout is a link, in the system's folder
    assert main(["predict", str(model), str(photos), "--csv", str(link), "--overwrite"]) == 1
    assert "is a link to a character device" in _err(capsys)
    assert link.is_symlink() and os.readlink(link) == "/dev/null"


def test_empty_paths_are_usage_errors(model: Path, photos: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["predict", str(model), str(photos), "--csv", ""],
                 ["export", str(model), "--out", " "],
                 ["train", str(photos), "--out", ""]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert "a path cannot be empty" in _err(capsys)


def test_an_absurd_image_size_is_refused_before_any_work(
        isolated_dirs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Kept small with no epochs: before the check, 5000 px filled the pixel cache with
    # 75 MB an image, and training at that size was killed for lack of memory.
    few = make_dataset(tmp_path / "few", classes=("red", "green"), per_class=2)
    for size in ("5000", "0"):
        assert main(["train", str(few), "--weights", "none", "--image-size", size,
                     "--epochs", "0", "--fine-tune-epochs", "0"]) == 1
        assert "--image-size must be between 16 and 2048" in _err(capsys)
    assert not (isolated_dirs / "cache").exists() and _runs(isolated_dirs) == []


def test_a_class_folder_that_is_a_file_is_told_once(model: Path, photos: Path,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "sorted"
    dest.mkdir()
    for name in ("red", "green", "blue"):
        (dest / name).write_text("not a folder")
    assert main(["predict", str(model), str(photos), "--sort-into", str(dest)]) == 0
    err = _err(capsys)
    told = [line for line in err.splitlines() if "not a folder" in line]
    assert 1 <= len(told) <= 3 and all("files of '" in line for line in told), err
    assert all((dest / n).read_text() == "not a folder" for n in ("red", "green", "blue"))


def test_a_failed_export_leaves_no_folder_behind(model: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tlgui.core import export
    from tlgui.core.errors import ExportError

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "_write_archive", broken)
    for fmt, out in (("savedmodel", tmp_path / "new" / "sm"),
                     ("keras", tmp_path / "new2" / "deeper")):
        if fmt == "keras":
            monkeypatch.setattr(export, "save_keras", broken)
        with pytest.raises(ExportError, match="the disk is full"):
            export.export_run(model, fmt, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_an_export_never_goes_into_the_dataset_the_run_was_trained_on(
        isolated_dirs: Path, photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(photos), *TRAIN_TINY]) == 0
    (run,) = _runs(isolated_dirs)
    before = snapshot(photos)
    assert main(["export", str(run), "--format", "onnx", "--out",
                 str(photos / "red" / "m.onnx")]) == 1
    assert "a dataset or input folder" in _err(capsys)
    assert snapshot(photos) == before
