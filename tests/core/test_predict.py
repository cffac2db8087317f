"""Predicting files, folders and mixes: batching, errors as rows, CSV, sorting by copy."""

from __future__ import annotations

import csv
import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import COLORS, make_image
from tests.tiny_models import save_random_classifier
from tlgui.cli import main
from tlgui.core.atomic import TEMP_PREFIX
from tlgui.core.config import TrainConfig
from tlgui.core.errors import Cancelled, ConfigError, ModelFileError
from tlgui.core.events import Event, StageProgress
from tlgui.core.model_file import save_keras
from tlgui.core.predict import (
    UNSURE_FOLDER,
    Prediction,
    Predictor,
    collect_images,
    collect_inputs,
    load_image,
    safe_folder_name,
    sort_into,
    write_csv,
)

SIZE = 32
CLASSES = ("cat", "dog", "fish")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny classifier whose outputs differ between images (see test_export)."""
    return save_random_classifier(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES,
                                  TrainConfig(weights="none", image_size=SIZE), head_std=0.05)


@pytest.fixture(scope="module")
def predictor(model_file: Path) -> Predictor:
    return Predictor.load(model_file)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """photos/ with nested folders, odd formats, a broken and an empty file, litter."""
    root = tmp_path / "photos"
    (root / "holiday" / "day2").mkdir(parents=True)
    colors = list(COLORS.values())
    make_image(colors[0], (60, 45), 1).save(root / "a.jpg", "JPEG")
    make_image(colors[1], (40, 80), 2).save(root / "holiday" / "b.PNG", "PNG")
    make_image(colors[2], (50, 50), 3).convert("L").save(root / "holiday" / "c.bmp", "BMP")
    make_image(colors[3], (90, 70), 4).save(root / "holiday" / "day2" / "d.webp", "WEBP")
    make_image(colors[0], (20, 12), 5).save(root / "holiday" / "day2" / "tiny.gif", "GIF")
    make_image(colors[1], (64, 64), 6).save(root / "e.jpeg", "JPEG")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    make_image(colors[2], (40, 40), 7).save(root / ".hidden.jpg", "JPEG")
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest()
                                       if p.is_file() else "")
            for p in sorted(root.rglob("*"))}


def test_collect_images_walks_folders_and_keeps_named_files(photos: Path,
                                                            tmp_path: Path) -> None:
    loose = tmp_path / "loose.dat"
    loose.write_bytes(b"x")
    found = collect_images([photos, loose, photos / "a.jpg", tmp_path / "missing.jpg"])
    names = [str(p.relative_to(tmp_path)) for p in found]
    assert names == [
        "photos/a.jpg", "photos/broken.jpg", "photos/e.jpeg", "photos/empty.png",
        "photos/holiday/b.PNG", "photos/holiday/c.bmp", "photos/holiday/day2/d.webp",
        "photos/holiday/day2/tiny.gif", "loose.dat", "missing.jpg",
    ]


def test_predictions_match_the_model_and_bad_files_are_rows(
        predictor: Predictor, photos: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    rows = predictor.predict_paths([photos, tmp_path / "missing.jpg"], top_k=2,
                                   report=events.append, batch_size=3)
    by_name = {r.path.name: r for r in rows}
    assert len(rows) == 9
    assert by_name["broken.jpg"].error and "corrupt" in by_name["broken.jpg"].error
    assert by_name["empty.png"].error and "not an image" in by_name["empty.png"].error
    assert by_name["missing.jpg"].error == "no such file or folder"
    good = [r for r in rows if r.error is None]
    assert len(good) == 6
    pixels = np.stack([load_image(r.path, SIZE) for r in good])
    want = predictor.loaded.model.predict(pixels, verbose=0)
    for r, probs in zip(good, want, strict=True):
        assert len(r.top) == 2
        assert r.top[0][1] >= r.top[1][1]
        assert r.label == CLASSES[int(probs.argmax())]
        for name, p in r.top:
            assert abs(p - probs[CLASSES.index(name)]) < 1e-5
    progress = [e for e in events if isinstance(e, StageProgress)]
    assert [e.done for e in progress] == [3, 6, 9]
    assert {e.total for e in progress} == {9}


def test_batch_size_does_not_change_results(predictor: Predictor, photos: Path) -> None:
    one = predictor.predict_paths([photos], top_k=3, batch_size=1)
    many = predictor.predict_paths([photos], top_k=3, batch_size=64)
    assert [r.path for r in one] == [r.path for r in many]
    for a, b in zip(one, many, strict=True):
        assert a.error == b.error
        assert [c for c, _ in a.top] == [c for c, _ in b.top]
        np.testing.assert_allclose([p for _, p in a.top], [p for _, p in b.top], atol=1e-5)


def test_csv_has_top1_then_topk_and_errors(tmp_path: Path) -> None:
    rows = [Prediction(Path("x/a.jpg"), (("dog", 0.75), ("cat", 0.2), ("fish", 0.05))),
            Prediction(Path("x/b,c.jpg"), error="corrupt or truncated image")]
    out = write_csv(rows, tmp_path / "out.csv", top_k=2)
    with open(out, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["path", "class", "probability", "top1_class", "top1_probability",
                        "top2_class", "top2_probability", "error"]
    assert table[1] == ["x/a.jpg", "dog", "0.750000", "dog", "0.750000", "cat", "0.200000",
                        ""]
    assert table[2] == ["x/b,c.jpg", "", "", "", "", "", "", "corrupt or truncated image"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_sort_into_copies_by_class_and_confidence(predictor: Predictor, photos: Path,
                                                  tmp_path: Path) -> None:
    before = _snapshot(photos)
    rows = predictor.predict_paths([photos])
    good = [r for r in rows if r.error is None]
    threshold = float(np.median([r.confidence for r in good]))
    dest = tmp_path / "sorted"
    counts = sort_into(rows, dest, threshold, inputs=[photos])
    assert sum(counts.values()) == len(good)
    for r in good:
        folder = UNSURE_FOLDER if r.confidence < threshold else r.label
        copy = dest / str(folder) / r.path.name
        assert copy.read_bytes() == r.path.read_bytes()
    assert counts.get(UNSURE_FOLDER, 0) >= 1
    assert sum(n for f, n in counts.items() if f != UNSURE_FOLDER) >= 1
    assert not list(dest.rglob("broken.jpg"))
    assert _snapshot(photos) == before
    # Sorting again copies nothing twice; a different file with a taken name is kept too.
    files_before = sorted(dest.rglob("*.*"))
    sort_into(rows, dest, threshold, inputs=[photos])
    assert sorted(dest.rglob("*.*")) == files_before
    r0 = good[0]
    other = tmp_path / "other" / r0.path.name
    other.parent.mkdir()
    other.write_bytes(b"different bytes")
    sort_into([Prediction(other, r0.top)], dest, threshold)
    copy = next(p for p in dest.rglob("*") if p.stem.endswith(" (2)"))
    assert copy.read_bytes() == b"different bytes"
    assert not [p for p in dest.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_sort_destination_inside_an_input_folder_is_refused(photos: Path) -> None:
    before = _snapshot(photos)
    rows = [Prediction(photos / "a.jpg", (("cat", 0.9),))]
    with pytest.raises(ConfigError, match="overlaps the input folder"):
        sort_into(rows, photos / "sorted", inputs=[photos])
    with pytest.raises(ConfigError, match="overlaps the input folder"):
        sort_into(rows, photos.parent, inputs=[photos / "holiday"])
    assert _snapshot(photos) == before


def test_class_names_become_safe_folder_names() -> None:
    assert safe_folder_name("cats/dogs") == "cats_dogs"
    assert safe_folder_name("..") == "_"
    assert safe_folder_name("what?. ") == "what_"
    assert safe_folder_name("Ünïcode ok") == "Ünïcode ok"


def test_cancel_stops_within_a_batch(predictor: Predictor, photos: Path) -> None:
    cancel = threading.Event()
    seen: list[Event] = []

    def report(event: Event) -> None:
        seen.append(event)
        cancel.set()

    with pytest.raises(Cancelled):
        predictor.predict_paths([photos], report=report, cancel=cancel, batch_size=2)
    assert len(seen) == 1


def test_lambda_model_is_refused_without_running_its_code(tmp_path: Path) -> None:
    import keras

    marker = tmp_path / "lambda_ran.txt"
    # The path must be a constant in the bytecode: Keras does not restore lambda defaults.
    touch = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Lambda(touch)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    path = tmp_path / "evil.keras"
    save_keras(model, path, CLASSES, {"image_size": 16})
    marker.unlink()  # building the model ran the lambda once; loading must not
    with pytest.raises(ModelFileError, match="refused for safety") as info:
        Predictor.load(path)
    assert "evil.keras" in str(info.value)
    assert not marker.exists()
    # The trap is real: an unsafe load, which tlgui never does, runs the code.
    keras.models.load_model(path, safe_mode=False, compile=False)
    assert marker.exists()


def test_unusable_model_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"holds no model\.keras"):
        Predictor.load(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelFileError, match=r"not a \.keras file"):
        Predictor.load(tmp_path / "model.onnx")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match=r"junk\.keras"):
        Predictor.load(tmp_path / "junk.keras")


def test_predict_command_writes_csv_and_sorts_copies(
        model_file: Path, photos: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(photos)
    out_csv, dest = tmp_path / "preds.csv", tmp_path / "sorted"
    code = main(["predict", str(model_file), str(photos / "holiday"), str(photos / "a.jpg"),
                 str(photos / "broken.jpg"), "--top-k", "5", "--csv", str(out_csv),
                 "--sort-into", str(dest), "--min-confidence", "0.6", "--batch-size", "2"])
    assert code == 0
    text = capsys.readouterr().out
    assert "5 image(s) classified, 1 unreadable." in text
    with open(out_csv, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 6
    assert "top3_class" in table[0] and "top4_class" not in table[0]
    copies = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    expected = sorted(
        f"{UNSURE_FOLDER if float(row['probability']) < 0.6 else row['class']}/"
        f"{Path(row['path']).name}" for row in table if not row["error"])
    assert copies == expected
    assert _snapshot(photos) == before


def test_predict_command_errors(model_file: Path, photos: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(model_file), str(photos), "--top-k", "0"]) == 1
    assert "--top-k must be at least 1" in capsys.readouterr().err
    assert main(["predict", str(model_file), str(photos),
                 "--sort-into", str(photos / "out")]) == 1
    assert "overlaps the input folder" in capsys.readouterr().err
    (tmp_path / "nothing").mkdir()
    assert main(["predict", str(model_file), str(tmp_path / "nothing")]) == 1
    assert "No image files found" in capsys.readouterr().out
    assert not (photos / "out").exists()


def _many_images(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    colors = list(COLORS.values())
    for i in range(n):
        make_image(colors[i % len(colors)], (40, 40), i).save(folder / f"{i:03d}.png", "PNG")
    return folder


def test_predictions_stream_in_bounded_batches(predictor: Predictor, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import tlgui.core.predict as predict_module

    files, reasons = predict_module.collect_inputs([_many_images(tmp_path / "in", 21)])
    real_load = predict_module.load_image
    real_model = Predictor.predict_pixels
    lock = threading.Lock()
    loaded = [0]
    ahead: list[int] = []  # at each model call: images decoded but not yet classified
    classified = [0]

    def load(path: Path, size: int) -> np.ndarray:
        with lock:
            loaded[0] += 1
        return real_load(path, size)

    def model(self: Predictor, pixels: np.ndarray) -> np.ndarray:
        with lock:
            ahead.append(loaded[0] - classified[0])
        classified[0] += len(pixels)
        return real_model(self, pixels)

    monkeypatch.setattr(predict_module, "load_image", load)
    monkeypatch.setattr(Predictor, "predict_pixels", model)
    batches = list(predictor.iter_predictions(files, reasons, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4, 1]
    assert [r.path for b in batches for r in b] == files
    # Never more than this batch and the next one decoded: memory is two batches.
    assert len(ahead) == 6 and max(ahead) <= 8
    monkeypatch.undo()
    assert [b for batch in batches for b in batch] == predictor.predict_paths(
        [tmp_path / "in"], batch_size=4)


def test_csv_is_written_as_it_goes_and_named_at_the_end(
        predictor: Predictor, photos: Path, tmp_path: Path) -> None:
    from tlgui.core.predict import collect_inputs
    from tlgui.core.prediction import prediction_csv

    files, reasons = collect_inputs([photos])
    out = tmp_path / "out" / "p.csv"
    sizes = []
    rows: list[Prediction] = []
    with prediction_csv(out, 2, min_confidence=0.5, inputs=[photos], files=files) as csv_out:
        for batch in predictor.iter_predictions(files, reasons, 2, batch_size=2):
            csv_out.write(batch)
            rows += batch
            (temp,) = [p for p in out.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]
            sizes.append(temp.stat().st_size)
            assert not out.exists()
    assert len(sizes) == (len(files) + 1) // 2 >= 3
    assert sizes == sorted(set(sizes))  # grew with every batch
    assert os.listdir(out.parent) == ["p.csv"] and out.stat().st_size == sizes[-1]
    # The same bytes as a CSV written at once from all the rows.
    at_once = write_csv(rows, tmp_path / "once.csv", 2, min_confidence=0.5)
    assert out.read_bytes() == at_once.read_bytes()


def test_a_failed_stream_leaves_no_csv_and_keeps_the_old_one(tmp_path: Path) -> None:
    from tlgui.core.prediction import prediction_csv

    out = tmp_path / "p.csv"
    out.write_text("the earlier results\n")
    row = Prediction(tmp_path / "a.jpg", (("cat", 0.9),))

    def cancelled_midway() -> None:
        with prediction_csv(out, 1, overwrite=True) as csv_out:
            csv_out.write([row] * 3)
            assert csv_out.rows == 3 and out.read_text() == "the earlier results\n"
            raise Cancelled("Prediction cancelled.")

    with pytest.raises(Cancelled):
        cancelled_midway()
    assert out.read_text() == "the earlier results\n"
    assert os.listdir(tmp_path) == ["p.csv"]


def test_ctrl_c_during_predict_leaves_no_csv(model_file: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import signal

    images = _many_images(tmp_path / "in", 12)
    out_csv = tmp_path / "results" / "preds.csv"
    real_model = Predictor.predict_pixels
    calls = []

    def model(self: Predictor, pixels: np.ndarray) -> np.ndarray:
        calls.append(len(pixels))
        if len(calls) == 2:  # one batch is in the temp file already
            os.kill(os.getpid(), signal.SIGINT)
        return real_model(self, pixels)

    monkeypatch.setattr(Predictor, "predict_pixels", model)
    code = main(["predict", str(model_file), str(images), "--csv", str(out_csv),
                 "--batch-size", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "cancelled" in err.lower() and "Traceback" not in err
    assert len(calls) == 2  # stopped within a batch
    assert not out_csv.exists()
    assert not out_csv.parent.exists() or not os.listdir(out_csv.parent)


def test_each_file_is_collected_once_however_it_is_reached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = _many_images(tmp_path / "photos", 3)
    (photos / "sub").mkdir()
    make_image(COLORS["red"], (40, 40), 9).save(photos / "sub" / "b.png", "PNG")
    (photos / "link.png").symlink_to(photos / "001.png")  # another name, same file
    (tmp_path / "alias").symlink_to(photos)  # another way to the same folder
    monkeypatch.chdir(tmp_path)
    given = [Path("photos"), tmp_path / "alias" / "002.png", photos / "sub" / "b.png",
             Path("photos/sub/../000.png"), tmp_path / "missing.png"]
    files, _ = collect_inputs(given)
    # What one realpath per file gives (the rule before looking once per folder).
    seen: set[str] = set()
    expected = []
    for p in [Path("photos") / n for n in ("000.png", "001.png", "002.png", "link.png")] \
            + [Path("photos/sub/b.png"), *given[1:]]:
        if os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            expected.append(p)
    assert files == expected
    assert [p.name for p in files] == ["000.png", "001.png", "002.png", "b.png", "missing.png"]
