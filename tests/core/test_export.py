"""Export formats agree with the Keras model, load without tlgui, and are written atomically.

Tolerances (absolute, on softmax probabilities, same images): .keras, SavedModel, float
TFLite and ONNX within 1e-4 with the same top-1 everywhere; the dynamic-range quantized
TFLite within 0.15 with the same top-1 wherever the Keras top-1 leads by over 0.2.
"""

from __future__ import annotations

import getpass
import io
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.imagegen import COLORS, make_image
from tlgui.core import export
from tlgui.core.atomic import TEMP_PREFIX
from tlgui.core.config import TrainConfig
from tlgui.core.errors import Cancelled, ExportError, ModelFileError, UnsafeDestination
from tlgui.core.events import Event, StageProgress
from tlgui.core.export import export_model, export_run, output_paths
from tlgui.core.imageio import decode_rgb
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import save_keras
from tlgui.core.predict import load_image

SIZE = 32
CLASSES = ("a", "b", "c")
FLOAT_TOL = 1e-4
QUANT_TOL = 0.15
QUANT_MARGIN = 0.2


def spread_weights(cm: ClassifierModel, seed: int = 0) -> None:
    """Rescales random weights so the tiny model's outputs differ between images.

    With Keras' default initialisation a 50-layer MobileNetV2 without ImageNet weights
    maps every image to features near 1e-12, so all outputs would be uniform.
    """
    rng = np.random.default_rng(seed)
    for w in cm.backbone.weights:
        if w.path.endswith("kernel"):
            fan_in = int(np.prod(w.shape[:2] if "depthwise" in w.path else w.shape[:-1]))
            w.assign(rng.normal(0, np.sqrt(2.0 / fan_in), w.shape).astype("float32"))
    head = cm.head.kernel
    head.assign(rng.normal(0, 0.05, head.shape).astype("float32"))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def source(work: Path) -> dict[str, Any]:
    """A run folder with a tiny classifier, test images and the Keras model's outputs."""
    cm = ClassifierModel.build(TrainConfig(weights="none", image_size=SIZE), CLASSES)
    spread_weights(cm)
    run = work / "run"
    run.mkdir()
    save_keras(cm.model, run / "model.keras", CLASSES,
               {"image_size": SIZE, "backbone": cm.backbone_name})
    images = work / "images"
    images.mkdir()
    files = []
    sizes = [(48, 40), (64, 64), (33, 90), (120, 80), (32, 32), (70, 50), (90, 45), (40, 100)]
    for i, size in enumerate(sizes):
        fmt = "PNG" if i % 2 == 0 else "JPEG"
        path = images / f"img{i}.{'png' if fmt == 'PNG' else 'jpg'}"
        make_image(list(COLORS.values())[i % 4], size, seed=i).save(path, fmt)
        files.append(path)
    square = np.stack([load_image(p, SIZE) for p in files])
    raw = [decode_rgb(p) for p in files]
    ref = cm.model.predict(square, verbose=0)
    # Eager calls: predict() would trace a new graph for every image size.
    ref_raw = np.stack([np.asarray(cm.model(r[None], training=False))[0] for r in raw])
    assert ref.std(axis=0).max() > 0.01, "the test model's outputs should vary"
    return {"cm": cm, "run": run, "files": files, "square": square, "raw": raw,
            "ref": ref, "ref_raw": ref_raw}


def _export(source: dict[str, Any], work: Path, fmt: str, from_file: bool) -> dict[str, Any]:
    events: list[Event] = []
    run = source["run"] / "model.keras" if from_file else source["run"]
    paths = export_run(run, fmt, work / "exports" / fmt, report=events.append)
    return {"paths": paths, "events": events}


@pytest.fixture(scope="module")
def keras_export(source: dict[str, Any], work: Path) -> dict[str, Any]:
    return _export(source, work, "keras", from_file=False)


@pytest.fixture(scope="module")
def savedmodel_export(source: dict[str, Any], work: Path) -> dict[str, Any]:
    return _export(source, work, "savedmodel", from_file=True)


@pytest.fixture(scope="module")
def tflite_export(source: dict[str, Any], work: Path) -> dict[str, Any]:
    return _export(source, work, "tflite", from_file=True)


@pytest.fixture(scope="module")
def onnx_export(source: dict[str, Any], work: Path) -> dict[str, Any]:
    return _export(source, work, "onnx", from_file=True)


def _assert_agree(got: np.ndarray, want: np.ndarray, tol: float = FLOAT_TOL) -> None:
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=tol, rtol=0)
    assert (got.argmax(-1) == want.argmax(-1)).all()


PLAIN_LOAD = r"""
import json, sys, zipfile
sys.modules["tlgui"] = None  # make sure nothing of tlgui can be imported
import numpy as np, keras, tensorflow as tf
keras_path, sm_path, data_path = sys.argv[1:4]
files = sys.argv[4:]
model = keras.models.load_model(keras_path)  # safe_mode=True is the default
names = json.loads(zipfile.ZipFile(keras_path).read("tlgui.json"))["class_names"]
data = np.load(data_path)
square = model.predict(data["square"], verbose=0)
raw = [np.asarray(model(data[f"raw{i}"][None]))[0] for i in range(len(files))]
serve = tf.saved_model.load(sm_path).signatures["serving_default"]
out = serve(image_bytes=tf.constant([open(f, "rb").read() for f in files]))
print(json.dumps({
    "names": names,
    "layers": [type(l).__name__ for l in model.layers],
    "input": [model.inputs[0].dtype, list(model.inputs[0].shape)],
    "square": square.tolist(), "raw": np.stack(raw).tolist(),
    "sm_probs": out["probabilities"].numpy().tolist(),
    "sm_top": [s.decode() for s in out["top_class"].numpy()],
    "sm_names": [s.decode() for s in out["class_names"].numpy()[0]],
    "tlgui_modules": [m for m, v in sys.modules.items() if m.startswith("tlgui") and v],
}))
"""


def test_keras_and_savedmodel_load_without_tlgui_in_a_fresh_process(
        source: dict[str, Any], keras_export: dict[str, Any],
        savedmodel_export: dict[str, Any], work: Path) -> None:
    keras_file = keras_export["paths"][0]
    assert keras_file == work / "exports" / "keras" / "model.keras"
    data = work / "inputs.npz"
    np.savez(data, square=source["square"],
             **{f"raw{i}": r for i, r in enumerate(source["raw"])})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    outside = work / "elsewhere"
    outside.mkdir()
    proc = subprocess.run(
        [sys.executable, "-I", "-c", PLAIN_LOAD, str(keras_file),
         str(savedmodel_export["paths"][0]), str(data), *map(str, source["files"])],
        cwd=outside, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["tlgui_modules"] == []
    assert got["names"] == list(CLASSES)
    assert got["input"] == ["uint8", [None, None, None, 3]]
    assert not [n for n in got["layers"] if n.startswith("Random") or n == "Dropout"]
    assert "Resizing" in got["layers"]
    _assert_agree(np.array(got["square"]), source["ref"])
    _assert_agree(np.array(got["raw"]), source["ref_raw"])
    # The SavedModel decodes the bytes itself and lets the model resize raw pixels.
    _assert_agree(np.array(got["sm_probs"]), source["ref_raw"])
    assert got["sm_top"] == [CLASSES[i] for i in source["ref_raw"].argmax(-1)]
    assert got["sm_names"] == list(CLASSES)


def test_export_reports_progress_and_keeps_metadata(keras_export: dict[str, Any]) -> None:
    progress = [e for e in keras_export["events"] if isinstance(e, StageProgress)]
    assert progress and all(e.stage == "export" for e in progress)
    assert progress[-1].done == progress[-1].total
    from tlgui.core.model_file import read_metadata

    meta = read_metadata(keras_export["paths"][0])
    assert meta["class_names"] == list(CLASSES)
    assert meta["image_size"] == SIZE
    assert meta["backbone"] == "MobileNetV2"


def test_savedmodel_pixel_endpoint_and_labels(source: dict[str, Any],
                                              savedmodel_export: dict[str, Any]) -> None:
    import tensorflow as tf

    folder = savedmodel_export["paths"][0]
    assert (folder / "labels.txt").read_text("utf-8").split() == list(CLASSES)
    loaded = tf.saved_model.load(str(folder))
    out = loaded.signatures["serve_pixels"](image=tf.constant(source["square"]))
    _assert_agree(out["probabilities"].numpy(), source["ref"])
    np.testing.assert_allclose(out["top_probability"].numpy(), source["ref"].max(-1),
                               atol=FLOAT_TOL)


def _tflite_probs(path: Path, square: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    detail = interpreter.get_input_details()[0]
    assert list(detail["shape"]) == [1, SIZE, SIZE, 3]
    assert detail["dtype"] == np.uint8
    return np.stack([runner(image=img[None])["probabilities"][0] for img in square])


def test_tflite_float_and_quantized_agree(source: dict[str, Any],
                                          tflite_export: dict[str, Any]) -> None:
    model, quant, labels = tflite_export["paths"]
    assert (model.name, quant.name, labels.name) == ("model.tflite", "model_quant.tflite",
                                                      "labels.txt")
    assert labels.read_text("utf-8") == "a\nb\nc\n"
    assert quant.stat().st_size < model.stat().st_size / 2
    _assert_agree(_tflite_probs(model, source["square"]), source["ref"])
    got = _tflite_probs(quant, source["square"])
    ref = source["ref"]
    np.testing.assert_allclose(got, ref, atol=QUANT_TOL, rtol=0)
    top2 = np.sort(ref, axis=-1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > QUANT_MARGIN
    assert clear.any()
    assert (got.argmax(-1)[clear] == ref.argmax(-1)[clear]).all()


def test_onnx_agrees_and_carries_class_names(source: dict[str, Any],
                                             onnx_export: dict[str, Any]) -> None:
    import onnxruntime as ort

    model, labels = onnx_export["paths"]
    assert labels.read_text("utf-8").split() == list(CLASSES)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "image" and inp.type == "tensor(uint8)" and inp.shape[1:] == [
        SIZE, SIZE, 3]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    (probs,) = session.run(["probabilities"], {"image": source["square"]})
    _assert_agree(probs, source["ref"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == list(CLASSES)
    assert meta["image_size"] == str(SIZE)


def test_exported_files_hold_no_paths_or_user_names(
        work: Path, keras_export: dict[str, Any], savedmodel_export: dict[str, Any],
        tflite_export: dict[str, Any], onnx_export: dict[str, Any]) -> None:
    user = getpass.getuser()
    needles = {str(work), str(work.resolve()), str(Path.home()), f"/{user}/",
               f"\\{user}\\", f"/{user}\x00", f"{os.sep}{user}"}
    files = [p for p in (work / "exports").rglob("*") if p.is_file()]
    assert len(files) >= 8
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            for encoded in (needle.encode(), needle.encode("utf-16-le")):
                assert encoded not in data, f"{path.name} contains {needle!r}"
    leftovers = [p for p in (work / "exports").rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert leftovers == []


def test_exported_files_follow_the_umask(keras_export: dict[str, Any],
                                         savedmodel_export: dict[str, Any],
                                         onnx_export: dict[str, Any]) -> None:
    """Temp files are owner-only; an export is meant to be copied and served."""
    mask = os.umask(0o022)
    os.umask(mask)
    for path in [*keras_export["paths"], *savedmodel_export["paths"], *onnx_export["paths"]]:
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == want, path.name


# -- failures and cancelling leave earlier files intact --------------------------------


def _plant(paths: list[Path]) -> dict[Path, bytes]:
    old = {}
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"earlier {p.name}".encode())
        old[p] = p.read_bytes()
    return old


def _assert_untouched(old: dict[Path, bytes], folder: Path) -> None:
    for p, data in old.items():
        assert p.read_bytes() == data
    assert sorted(folder.iterdir()) == sorted(old)


def test_failed_onnx_conversion_writes_nothing(source: dict[str, Any], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import tf2onnx

    out = tmp_path / "onnx"
    old = _plant(output_paths("onnx", out))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(tf2onnx.convert, "from_function", broken)
    cm = source["cm"]
    with pytest.raises(ExportError, match="converter exploded"):
        export_model(cm.model, CLASSES, SIZE, "onnx", out, overwrite=True)
    _assert_untouched(old, out)


def test_tflite_failing_on_the_second_file_writes_neither(
        source: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    calls: list[bool] = []

    class FakeConverter:
        def __init__(self) -> None:
            self.optimizations: list[Any] = []

        def convert(self) -> bytes:
            calls.append(bool(self.optimizations))
            if len(calls) == 2:
                raise RuntimeError("quantizer exploded")
            return b"float model"

    monkeypatch.setattr(export, "_write_archive", lambda archive, folder: None)
    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model",
                        staticmethod(lambda path: FakeConverter()))
    out = tmp_path / "tfl"
    old = _plant(output_paths("tflite", out))
    with pytest.raises(ExportError, match="quantizer exploded"):
        export_model(source["cm"].model, CLASSES, SIZE, "tflite", out, overwrite=True)
    assert calls == [False, True]
    _assert_untouched(old, out)


def test_failed_savedmodel_keeps_the_earlier_one(source: dict[str, Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sm"
    old = _plant([out / "saved_model.pb", out / "variables" / "variables.index"])

    def half_write(archive: Any, folder: Path) -> None:
        (folder / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(export, "_write_archive", half_write)
    with pytest.raises(ExportError, match="disk full"):
        export_model(source["cm"].model, CLASSES, SIZE, "savedmodel", out, overwrite=True)
    for p, data in old.items():
        assert p.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


def test_savedmodel_never_replaces_a_folder_of_other_files(source: dict[str, Any],
                                                           tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "keep.jpg").write_bytes(b"mine")
    with pytest.raises(UnsafeDestination, match="not a SavedModel folder"):
        export_model(source["cm"].model, CLASSES, SIZE, "savedmodel", tmp_path / "photos")
    assert (tmp_path / "photos" / "keep.jpg").read_bytes() == b"mine"


def test_failed_keras_save_keeps_the_earlier_file(source: dict[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "mine.keras"
    old = _plant([target])

    def half_save(model: Any, path: Path, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(export, "save_keras", half_save)
    with pytest.raises(ExportError, match="disk full"):
        export_model(source["cm"].model, CLASSES, SIZE, "keras", target, overwrite=True)
    _assert_untouched(old, tmp_path)


@pytest.mark.parametrize("cancel_at", [0, 1])
def test_cancelled_export_writes_nothing(source: dict[str, Any], tmp_path: Path,
                                         cancel_at: int) -> None:
    target = tmp_path / "model.keras"
    old = _plant([target])
    cancel = threading.Event()
    seen: list[Event] = []

    def report(event: Event) -> None:
        seen.append(event)
        if len(seen) > cancel_at:
            cancel.set()

    with pytest.raises(Cancelled):
        export_model(source["cm"].model, CLASSES, SIZE, "keras", target, report, cancel,
                     overwrite=True)
    _assert_untouched(old, tmp_path)


def test_bad_requests_are_refused_with_clear_messages(source: dict[str, Any],
                                                      tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="Unknown export format 'zip'"):
        export_run(source["run"], "zip", tmp_path / "x")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(ModelFileError, match=r"holds no model\.keras"):
        export_run(tmp_path / "empty_run", "keras", tmp_path / "x")
    with pytest.raises(ExportError, match="2 class names"):
        export_model(source["cm"].model, ("a", "b"), SIZE, "keras", tmp_path / "x")
    with pytest.raises(ExportError, match="line break"):
        export_model(source["cm"].model, ("a", "b\nc", "d"), SIZE, "onnx", tmp_path / "x")
    assert list(tmp_path.iterdir()) == [tmp_path / "empty_run"]


def test_output_paths_follow_the_suffix(tmp_path: Path) -> None:
    assert output_paths("keras", tmp_path / "m.keras") == [tmp_path / "m.keras"]
    assert output_paths("keras", tmp_path / "d") == [tmp_path / "d" / "model.keras"]
    assert output_paths("tflite", tmp_path / "f.tflite") == [
        tmp_path / "f.tflite", tmp_path / "f_quant.tflite", tmp_path / "labels.txt"]
    assert output_paths("onnx", tmp_path / "d") == [tmp_path / "d" / "model.onnx",
                                                   tmp_path / "d" / "labels.txt"]
    assert output_paths("savedmodel", tmp_path / "sm") == [tmp_path / "sm"]


def test_png_bytes_decode_like_pillow(source: dict[str, Any]) -> None:
    """The SavedModel decodes with TensorFlow; PNGs must give Pillow's exact pixels."""
    import tensorflow as tf
    from PIL import Image

    for path, raw in zip(source["files"][::2], source["raw"][::2], strict=True):
        buf = io.BytesIO()
        Image.open(path).save(buf, "PNG")
        tf_pixels = tf.io.decode_image(buf.getvalue(), channels=3,
                                       expand_animations=False).numpy()
        assert np.array_equal(tf_pixels, raw)


def test_full_size_input_differs_from_tlgui_predict_only_by_rounding(
        source: dict[str, Any]) -> None:
    """tlgui predict rounds the resized pixels to uint8 first; the exports need not."""
    diff = np.abs(source["ref_raw"] - source["ref"]).max()
    assert 0 < diff < 0.05
