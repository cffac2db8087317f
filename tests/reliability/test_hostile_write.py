"""The hostile tester's write-side findings (issue 12 re-attack): each one reproduced.

Nothing here needs a trained model except where a model is loaded on purpose; the
command-line cases use a tiny untrained one (``tiny_model_file``).
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path

import pytest

from tlgui.core.audit_findings import Finding, findings_csv_text
from tlgui.core.prediction import Prediction, write_csv

pytestmark = pytest.mark.timeout(240, method="signal")


def _rows(text: str) -> list[list[str]]:
    # ``newline=""`` is what the csv module asks for; splitlines() is what a naive
    # reader (and several spreadsheets) does with a lone carriage return.
    return list(csv.reader(io.StringIO(text, newline="")))


def _naive_rows(text: str) -> list[list[str]]:
    return [next(csv.reader([line])) for line in text.splitlines() if line]


# -- item 2: a lone carriage return in a file name ------------------------------------------
def test_prediction_csv_keeps_a_carriage_return_in_one_cell(tmp_path: Path) -> None:
    name = tmp_path / "a\r=4.jpg"
    rows = [Prediction(name, (("cat", 0.9), ("dog", 0.1))),
            Prediction(tmp_path / "b\n@x.jpg", (("dog", 0.8), ("cat", 0.2)))]
    out = write_csv(rows, tmp_path / "out" / "p.csv")
    text = out.read_text(encoding="utf-8")
    for parse in (_rows, _naive_rows):
        parsed = parse(text)
        assert len(parsed) == 3, parsed  # the header and two rows, however it is read
        assert all(len(r) == len(parsed[0]) for r in parsed)
        # No cell of any row begins a formula.
        assert not any(c.startswith(("=", "+", "-", "@")) for r in parsed for c in r)
    assert _rows(text)[1][0] == str(tmp_path / "a\\x0d=4.jpg")


def test_prediction_csv_escapes_control_characters_in_class_names(tmp_path: Path) -> None:
    rows = [Prediction(tmp_path / "a.jpg", (("x\r=1+1", 0.6), ("\t-y", 0.4)), None)]
    text = write_csv(rows, tmp_path / "p.csv").read_text(encoding="utf-8")
    parsed = _naive_rows(text)
    assert len(parsed) == 2
    assert parsed[1][1] == "x\\x0d=1+1"
    assert parsed[1][5] == "\\x09-y"  # escaped: no longer a formula start


# -- item 3: the audit CSV is neutralised too -------------------------------------------------
@pytest.mark.parametrize("folder", ["-2+3", "+SUM(1)", "@x", "=cmd|' /C calc'!A0"])
def test_audit_csv_neutralises_every_text_cell(tmp_path: Path, folder: str) -> None:
    f = Finding(tmp_path / folder / "=1.jpg", "near_duplicate", folder, folder, 0.5,
                Path(f"={folder}") / "b.jpg", "same_class", "", 0, 1)
    parsed = _naive_rows(findings_csv_text([f]))
    assert len(parsed) == 2
    row = parsed[1]
    assert row[2] == "'" + folder and row[3] == "'" + folder
    assert row[5].startswith("'=")
    assert row[4] == "0.500000"


def test_audit_csv_keeps_a_carriage_return_in_one_cell(tmp_path: Path) -> None:
    f = Finding(tmp_path / "a\r=2.jpg", "outlier", "c\rat", "", 1.0, None, "blank", "", 0)
    parsed = _naive_rows(findings_csv_text([f]))
    assert len(parsed) == 2 and len(parsed[1]) == 6
    assert parsed[1][2] == "c\\x0dat"


# -- shared pieces -------------------------------------------------------------------------
def _image(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), colour).save(path, "JPEG")
    return path


def _bad_model(path: Path) -> Path:
    """A model file that fails to load: an error about it means the model was loaded,
    so a destination check that was meant to come first did not."""
    path.write_bytes(b"not a zip")
    return path


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from tlgui.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# -- item 6: the heat-map folder is checked like every destination ----------------------------
def test_explain_destination_under_a_file_or_unwritable_is_refused_at_once(
        tmp_path: Path) -> None:
    from tlgui.core.errors import TlguiError
    from tlgui.core.explain import check_explain_destination

    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "in").mkdir()
    for dest in (afile / "h", Path("/proc/h")):
        with pytest.raises(TlguiError):
            check_explain_destination(dest, [tmp_path / "in"])
    assert check_explain_destination(tmp_path / "maps", [tmp_path / "in"]) == \
        tmp_path / "maps"


def test_predict_explain_into_a_file_path_fails_before_the_model_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = _image(tmp_path / "in" / "a.jpg")
    (tmp_path / "afile").write_text("x")
    code, text = _cli(["predict", str(_bad_model(tmp_path / "m.keras")), str(img),
                       "--explain", str(tmp_path / "afile" / "h")], capsys)
    assert code == 1
    assert "afile" in text and "not a zip" not in text and "m.keras" not in text


# -- item 7: one over-long image name does not cost the others their heat maps ---------------
class _FakeExplainer:
    image_size = 32

    def explain(self, pixels: object) -> list[object]:
        import numpy as np

        from tlgui.core.explain import Explanation
        from tlgui.core.heatmap import Grid

        n = len(pixels)  # type: ignore[arg-type]
        return [Explanation(np.ones((2, 2), np.float32), 0, "cat", 0.9, Grid.even(32, 2, 2))
                for _ in range(n)]


def test_heat_maps_of_long_names_are_written_with_shortened_names(tmp_path: Path) -> None:
    from tlgui.core.explain import write_explanations

    long_one = _image(tmp_path / "in" / ("L" * 250 + ".jpg"))
    short = _image(tmp_path / "in" / "b.jpg")
    notices: list[object] = []
    written = write_explanations(_FakeExplainer(), [long_one, short, long_one],  # type: ignore[arg-type]
                                 tmp_path / "hm", notices.append)
    assert len(written) == 3 and all(p.is_file() for p in written)
    assert all(len(os.fsencode(p.name)) <= 255 for p in written)
    assert written[0].name.endswith(".cat.png") and written[0].name.startswith("LLL")
    assert written[1].name == "b.jpg.cat.png"
    assert written[2] != written[0]


def test_a_heat_map_that_cannot_be_written_is_a_notice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from tlgui.core.events import Notice
    from tlgui.core.explain import write_explanations

    a, b = _image(tmp_path / "in" / "a.jpg"), _image(tmp_path / "in" / "b.jpg")
    real_save = Image.Image.save

    def failing_save(self: Image.Image, fp: object, *args: object, **kw: object) -> None:
        if calls.append(1) or len(calls) == 1:
            raise OSError(28, "No space left on device")
        real_save(self, fp, *args, **kw)  # type: ignore[arg-type]

    calls: list[int] = []
    monkeypatch.setattr(Image.Image, "save", failing_save)
    notices: list[object] = []
    written = write_explanations(_FakeExplainer(), [a, b], tmp_path / "hm",  # type: ignore[arg-type]
                                 notices.append)
    assert [p.name for p in written] == ["b.jpg.cat.png"]
    assert any(isinstance(n, Notice) and "a.jpg" in n.message for n in notices)


# -- item 8: over-long names are refused before the work -------------------------------------
def test_over_long_names_are_refused_by_the_destination_checks(tmp_path: Path) -> None:
    from tlgui.core.destinations import check_folder_output, check_output
    from tlgui.core.errors import UnsafeDestination

    with pytest.raises(UnsafeDestination, match="255"):
        check_output(tmp_path / ("x" * 300 + ".csv"))
    with pytest.raises(UnsafeDestination, match="255"):
        check_output(tmp_path / ("d" * 300) / "p.csv")
    with pytest.raises(UnsafeDestination, match="255"):
        check_folder_output(tmp_path / ("s" * 256))
    deep = tmp_path.joinpath(*["p" * 200] * 25) / "p.csv"
    with pytest.raises(UnsafeDestination, match="path"):
        check_output(deep)
    # Names at the limit are fine; bytes count, not characters.
    check_output(tmp_path / ("x" * 251 + ".csv"))
    with pytest.raises(UnsafeDestination):
        check_output(tmp_path / ("é" * 130 + ".csv"))


def test_train_out_with_an_over_long_name_fails_before_the_scan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _cli(["train", str(tmp_path / "no-data"), "--weights", "none",
                       "--out", str(tmp_path / ("m" * 300 + ".keras"))], capsys)
    assert code == 1 and "bytes long" in text


def test_predict_csv_with_an_over_long_name_fails_before_the_model_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = _image(tmp_path / "in" / "a.jpg")
    code, text = _cli(["predict", str(_bad_model(tmp_path / "m.keras")), str(img),
                       "--csv", str(tmp_path / ("c" * 300 + ".csv"))], capsys)
    assert code == 1 and "bytes long" in text


# -- item 9: a CSV that is a hard link to an image is refused before the model loads ---------
def test_predict_csv_hard_linked_to_an_input_image_is_refused_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = _image(tmp_path / "data" / "cat" / "0.jpg")
    before = img.read_bytes()
    link = tmp_path / "out.csv"
    os.link(img, link)
    code, text = _cli(["predict", str(_bad_model(tmp_path / "m.keras")),
                       str(tmp_path / "data"), "--csv", str(link), "--overwrite"], capsys)
    assert code == 1
    assert "input files" in text and "not a zip" not in text
    assert img.read_bytes() == before


# -- item 15: a CSV beside single input files is written (a table is not an image); ------
# -- inside an input folder it is refused before the model loads --------------------------
def test_predict_csv_inside_an_input_folder_is_refused_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _image(tmp_path / "data" / "cat" / "0.jpg")
    dest = tmp_path / "data" / "cat" / "preds.csv"
    code, text = _cli(["predict", str(_bad_model(tmp_path / "m.keras")),
                       str(tmp_path / "data"), "--csv", str(dest)], capsys)
    assert code == 1 and "inside" in text and "not a zip" not in text
    assert not dest.exists()


def test_write_csv_beside_single_files_keeps_them(tmp_path: Path) -> None:
    a = _image(tmp_path / "cases" / "0.jpg")
    before = a.read_bytes()
    out = write_csv([Prediction(a, (("cat", 1.0),))], tmp_path / "cases" / "p.csv",
                    inputs=[a])
    assert out.is_file() and a.read_bytes() == before


def test_write_csv_never_replaces_a_classified_file(tmp_path: Path) -> None:
    from tlgui.core.errors import UnsafeDestination

    a = _image(tmp_path / "cases" / "0.jpg")
    with pytest.raises(UnsafeDestination):
        write_csv([Prediction(a, (("cat", 1.0),))], a, inputs=[a], overwrite=True)


# -- item 10: --overwrite never replaces a copy made by the same run ---------------------------
def test_sort_overwrite_keeps_both_copies_of_one_name(tmp_path: Path) -> None:
    from tlgui.core.sorting import sort_into

    a = _image(tmp_path / "same" / "a" / "x.jpg", (250, 0, 0))
    b = _image(tmp_path / "same" / "b" / "x.jpg", (0, 0, 250))
    old = tmp_path / "sso" / "cat" / "x.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"an older file the user asked to replace")
    rows = [Prediction(a, (("cat", 0.9),)), Prediction(b, (("cat", 0.8),))]
    counts = sort_into(rows, tmp_path / "sso", inputs=[tmp_path / "same"], overwrite=True)
    assert counts == {"cat": 2}
    copies = sorted(p.read_bytes() for p in (tmp_path / "sso" / "cat").iterdir())
    assert copies == sorted([a.read_bytes(), b.read_bytes()])


# -- item 11: a class named like the unsure folder gets its own folder ------------------------
@pytest.mark.parametrize("name", ["_unsure", "_UNSURE"])
def test_a_class_named_unsure_does_not_mix_with_the_unsure_files(
        tmp_path: Path, name: str) -> None:
    from tlgui.core.events import Notice
    from tlgui.core.sorting import UNSURE_FOLDER, sort_into

    a = _image(tmp_path / "in" / "a.jpg", (250, 0, 0))
    b = _image(tmp_path / "in" / "b.jpg", (0, 0, 250))
    rows = [Prediction(a, ((name, 0.9),)), Prediction(b, (("cat", 0.3),))]
    notices: list[object] = []
    counts = sort_into(rows, tmp_path / "out", 0.5, [tmp_path / "in"], notices.append)
    assert counts == {f"{name} (class)": 1, UNSURE_FOLDER: 1}
    assert (tmp_path / "out" / f"{name} (class)" / "a.jpg").is_file()
    assert [p.name for p in (tmp_path / "out" / UNSURE_FOLDER).iterdir()] == ["b.jpg"]
    assert any(isinstance(n, Notice) and "(class)" in n.message for n in notices)


# -- item 13: option values are range-checked before the scan, naming the option --------------
@pytest.mark.parametrize(("option", "value"), [
    ("--batch-size", "0"), ("--seed", "-5"), ("--seed", str(2**32)),
    ("--validation-split", "nan"), ("--validation-split", "1.5"),
    ("--validation-split", "-1"), ("--validation-split", "1"), ("--epochs", "-1"),
    ("--fine-tune-epochs", "-2"), ("--lr", "nan"), ("--lr", "0"), ("--fine-tune-lr", "inf"),
    ("--patience", "-1"),
])
def test_train_options_out_of_range_fail_before_the_scan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    code, text = _cli(["train", str(tmp_path / "no-data"), "--weights", "none",
                       option, value], capsys)
    assert code == 1
    assert option in text and "no-data" not in text  # the scan never started


@pytest.mark.parametrize("value", ["nan", "1.5", "-1"])
def test_scan_validation_split_out_of_range_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, text = _cli(["scan", str(tmp_path / "no-data"), "--validation-split", value],
                      capsys)
    assert code == 1 and "--validation-split" in text and "no-data" not in text


def test_train_config_ranges_name_the_setting() -> None:
    from tlgui.core.config import PhaseConfig, TrainConfig, check_train_config
    from tlgui.core.errors import ConfigError

    check_train_config(TrainConfig())
    for bad, words in ((TrainConfig(batch_size=0), "batch size"),
                       (TrainConfig(dropout=1.0), "dropout"),
                       (TrainConfig(phase2=PhaseConfig(learning_rate=float("nan"))),
                        "phase2 learning rate")):
        with pytest.raises(ConfigError, match=words):
            check_train_config(bad)


# -- item 14: a bad --weights file is said in one line, for what it is ------------------------
def test_weights_that_are_not_files_are_named_for_what_they_are(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipe = tmp_path / "w.h5"
    os.mkfifo(pipe)
    for weights, words in ((pipe, "named pipe"), (Path("/dev/zero"), "character device"),
                           (tmp_path, "folder"), (tmp_path / "none.h5", "does not exist")):
        code, text = _cli(["train", str(tmp_path / "no-data"), "--weights", str(weights)],
                          capsys)
        assert code == 1 and words in text and "no-data" not in text, text
        assert len(text.strip().splitlines()) == 1


def test_a_whole_model_as_weights_is_one_line_without_warnings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.imagegen import make_dataset
    from tests.reliability.helpers import tiny_model_file

    model = tiny_model_file(tmp_path / "m.keras", ("a", "b"))
    data = make_dataset(tmp_path / "d", per_class=3)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, text = _cli(["train", str(data), "--weights", str(model), "--image-size",
                           "32", "--epochs", "1", "--fine-tune-epochs", "0"], capsys)
    error = text[text.index("error:"):].strip()
    assert code == 1 and "does not fit" in error
    assert len(error.splitlines()) == 1 and len(error) < 400, error
    assert not [w for w in caught if issubclass(w.category, UserWarning)]


# -- item 17: an exported bare .keras file never lands in the dataset it was trained on ------
def test_export_of_a_trained_keras_file_refuses_its_dataset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_dirs: Path) -> None:
    from tests.imagegen import make_dataset
    from tlgui.core.model_file import read_metadata

    data = make_dataset(tmp_path / "photos", classes=("red", "green"), per_class=4,
                        size=(32, 32))
    model = tmp_path / "m.keras"
    code, text = _cli(["train", str(data), "--weights", "none", "--image-size", "32",
                       "--epochs", "1", "--fine-tune-epochs", "0", "--out", str(model)],
                      capsys)
    assert code == 0, text
    assert read_metadata(model)["dataset"] == str(data.resolve())
    before = sorted(p.name for p in data.rglob("*"))
    for out in (data / "x.keras", data / "red" / "x.keras"):
        code, text = _cli(["export", str(model), "--out", str(out)], capsys)
        assert code == 1 and "inside" in text, text
    assert sorted(p.name for p in data.rglob("*")) == before
    # The run folder's checkpoint records it too; outside the dataset the export works.
    (checkpoint,) = (isolated_dirs / "data").rglob("model.keras")
    assert read_metadata(checkpoint)["dataset"] == str(data.resolve())
    code, text = _cli(["export", str(model), "--out", str(tmp_path / "e.keras")], capsys)
    assert code == 0, text
    assert "dataset" not in read_metadata(tmp_path / "e.keras")  # paths stay here
