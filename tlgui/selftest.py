"""``tlgui --self-test``: train, export, reload and predict on generated images, offline.

Run from an installed bundle, it proves that the bundle is complete on a machine without
internet: TensorFlow, Keras, the bundled ImageNet weights, the model file round trip and
Qt all load from inside the bundle. Run from source, it finds weights the way the app
does (``tlgui.core.weights``) and falls back to random weights, saying so, when none are
on the machine.

A frozen (installed) build must use the weights shipped inside it: the self-test fails
when it would pick weights from anywhere else, and so does a run with
``TLGUI_SELFTEST_REQUIRE_BUNDLED_WEIGHTS=1``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

REQUIRE_BUNDLED_ENV = "TLGUI_SELFTEST_REQUIRE_BUNDLED_WEIGHTS"
# Smallest MobileNetV2 sizes first: a self-test should take seconds, not minutes.
SIZE_PREFERENCE = (96, 128, 160)
CLASSES = (("red_disc", (205, 45, 45)), ("green_square", (45, 170, 70)),
           ("blue_stripes", (50, 70, 200)))
FORMATS_ENV = "TLGUI_SELFTEST_FORMATS"
ALL_FORMATS = ("keras", "onnx", "tflite", "savedmodel")
DEFAULT_FORMATS = ("keras", "onnx")
# A reloaded export must give the trained model's probabilities up to float32 noise;
# TFLite's CPU kernels round differently, hence its looser bound.
TOLERANCE = {"keras": 1e-4, "savedmodel": 1e-4, "tflite": 2e-3}


class SelfTestFailure(Exception):
    """A check of the self-test failed; the message says which and why."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SelfTestFailure(message)


def is_frozen() -> bool:
    """True when running from a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def make_images(root: Path, per_class: int, seed: int = 0) -> Path:
    """Writes ``root/<class>/<i>.jpg``: one colour and shape per class, noisy, varied sizes.

    Args:
        root: destination folder (created).
        per_class: images per class.
        seed: seed of the noise, sizes and positions.

    Returns:
        ``root``.
    """
    rng = np.random.default_rng(seed)
    for ci, (name, color) in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = (int(v) for v in rng.integers(72, 120, size=2))
            background = rng.normal(128, 30, (h, w, 3)).clip(0, 255).astype(np.uint8)
            img = Image.fromarray(background, "RGB")
            draw = ImageDraw.Draw(img)
            side = int(min(w, h) * rng.uniform(0.45, 0.7))
            x0 = int(rng.integers(0, w - side + 1))
            y0 = int(rng.integers(0, h - side + 1))
            box = (x0, y0, x0 + side, y0 + side)
            if ci == 0:
                draw.ellipse(box, fill=color)
            elif ci == 1:
                draw.rectangle(box, fill=color)
            else:
                for k in range(0, side, 8):
                    draw.rectangle((x0, y0 + k, x0 + side, y0 + k + 3), fill=color)
            img.save(folder / f"{i:03d}.jpg", "JPEG", quality=90)
    return root


def choose_weights(image_size: int | None, require_bundled: bool) -> tuple[int, Path | None, str]:
    """Picks the image size and the MobileNetV2 weights file the self-test trains with.

    Args:
        image_size: a fixed size, or None to take the smallest size with a weights file.
        require_bundled: fail unless the file comes from the bundled weights folder.

    Returns:
        (image size, weights file or None for random weights, where it was found).

    Raises:
        SelfTestFailure: bundled weights were required and not found or not used.
    """
    from tlgui.core import backbones
    from tlgui.core.weights import bundled_weights_dirs, find_weights, search_dirs

    spec = backbones.get(backbones.DEFAULT_BACKBONE)
    sizes = (image_size,) if image_size else SIZE_PREFERENCE
    for size in sizes:
        found = find_weights(spec, size)
        if found is None:
            continue
        bundled_dirs = {d.resolve() for d in bundled_weights_dirs()}
        bundled = found.parent.resolve() in bundled_dirs
        if require_bundled and not bundled:
            raise SelfTestFailure(
                f"the weights file {found} is not the one shipped with the app (expected "
                f"it in {', '.join(str(d) for d in bundled_weights_dirs())}); unset "
                "TLGUI_WEIGHTS_DIR or rebuild the bundle with the weights inside")
        return size, found, "bundled" if bundled else "found on this computer"
    if require_bundled:
        names = ", ".join(spec.weights_file(s) for s in sizes)
        raise SelfTestFailure(
            f"no bundled {spec.name} weights ({names}) in "
            + ", ".join(str(d) for d in bundled_weights_dirs()))
    searched = "; ".join(str(d) for d in search_dirs())
    return sizes[0], None, f"none found (searched {searched})"


def _formats_from_env() -> tuple[str, ...]:
    value = os.environ.get(FORMATS_ENV, "").strip().lower()
    if not value:
        return DEFAULT_FORMATS
    if value == "all":
        return ALL_FORMATS
    return tuple(f.strip() for f in value.split(",") if f.strip())


def _export_and_check(fmt: str, model: Any, names: tuple[str, ...], size: int, out: Path,
                      probe: list[Path], expected: np.ndarray) -> str:
    """Exports in one format, loads the result back, and compares it with ``expected``.

    Returns:
        A one-line summary for the report.
    """
    from tlgui.core.export import export_model

    target = out / {"keras": "model.keras", "onnx": "model.onnx", "tflite": "model.tflite",
                    "savedmodel": "savedmodel"}[fmt]
    written = export_model(model, names, size, fmt, target,
                           extra={"backbone": "MobileNetV2", "self_test": True})
    _check(written[0].exists(), f"{fmt} export wrote nothing at {written[0]}")
    got: np.ndarray | None = None
    if fmt == "keras":
        got = _check_keras(written[0], names, size, probe)
    elif fmt == "onnx":
        _check_onnx(written[0], names, size)
    elif fmt == "tflite":
        got = _check_tflite(written[0], probe, size)
    else:
        got = _check_savedmodel(written[0], probe, size)
    if got is not None:
        diff = float(np.abs(got - expected).max())
        _check(diff < TOLERANCE[fmt],
               f"the {fmt} export predicts differently from the trained model "
               f"(max difference {diff:g})")
        return f"{fmt}: {written[0].name} reloaded, same probabilities (max diff {diff:.1e})"
    return f"{fmt}: {written[0].name} written and valid"


def _check_keras(path: Path, names: tuple[str, ...], size: int, probe: list[Path]) -> np.ndarray:
    from tlgui.core.model_file import load_keras
    from tlgui.core.predict import Predictor

    _, loaded_names, meta = load_keras(path)
    _check(loaded_names == names, f"class names changed on reload: {loaded_names}")
    _check(meta.get("image_size") == size, f"metadata changed on reload: {meta}")
    rows = Predictor.load(path).predict_paths(probe, top_k=len(names))
    _check(all(r.error is None for r in rows), f"prediction failed: {rows}")
    return np.array([[dict(r.top)[n] for n in names] for r in rows], dtype=np.float32)


def _check_onnx(path: Path, names: tuple[str, ...], size: int) -> None:
    import json

    import onnx

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    _check(json.loads(meta.get("class_names", "[]")) == list(names),
           f"the ONNX file lacks its class names: {meta}")
    _check(meta.get("image_size") == str(size), f"the ONNX file lacks its image size: {meta}")


def _check_tflite(path: Path, probe: list[Path], size: int) -> np.ndarray:
    import tensorflow as tf

    from tlgui.core.predict import load_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of tf.lite.Interpreter
        interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for p in probe:
        interpreter.set_tensor(inp["index"], load_image(p, size)[None])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0])
    return np.array(rows, dtype=np.float32)


def _check_savedmodel(path: Path, probe: list[Path], size: int) -> np.ndarray:
    import tensorflow as tf

    from tlgui.core.predict import load_image

    loaded = tf.saved_model.load(str(path))
    batch = tf.constant(np.stack([load_image(p, size) for p in probe]))
    return np.asarray(loaded.signatures["serve_pixels"](image=batch)["probabilities"])


def _check_qt() -> str:
    """Loads Qt widgets offscreen and paints one image; returns the Qt version."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QApplication

    # Never the default platform: without a display it aborts the whole process.
    app = QApplication.instance() or QApplication(["tlgui-self-test", "-platform", "offscreen"])
    _check(app is not None, "Qt did not start")
    image = QImage(8, 8, QImage.Format.Format_RGB32)
    image.fill(QColor(0, 0, 0))
    painter = QPainter(image)
    painter.fillRect(0, 0, 8, 8, QColor(10, 200, 30))
    painter.end()
    _check(image.pixelColor(4, 4).green() == 200, "Qt painted nothing")
    import pyqtgraph

    return f"PySide6 {pyside_version}, pyqtgraph {pyqtgraph.__version__}"


def _check_sample_data() -> str:
    """Finds the builders of the sample data sets the app offers (no data, no network)."""
    import tensorflow_datasets as tfds

    from tlgui.core.tfds_fetch import SAMPLE_DATASETS

    for name in SAMPLE_DATASETS:
        tfds.builder_cls(name)
    return ", ".join(SAMPLE_DATASETS)


def _self_test(work: Path, say: Callable[[str], None], *, image_size: int | None,
               per_class: int, epochs: int, formats: tuple[str, ...], require_bundled: bool,
               check_qt: bool, check_sample_data: bool, device: str) -> None:
    import keras
    import tensorflow as tf

    from tlgui.core.config import AugmentConfig, PhaseConfig, SplitConfig, TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.devices import describe_compute, select_device
    from tlgui.core.events import Event, PhaseStarted
    from tlgui.core.pixel_cache import PixelCache
    from tlgui.core.training import run_training

    say(f"Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, Keras "
        f"{keras.__version__} ({keras.backend.backend()} backend), "
        f"{'installed bundle' if is_frozen() else 'from source'}")
    compute = describe_compute(device)
    chosen = select_device(device)  # a device that is not there fails the self-test
    others = ", ".join(f"{d.id} {d.label()}" for d in compute.others) or "none"
    say(f"device: {chosen.id} {chosen.label()} (setting '{device}'; also seen: {others})")
    size, weights_file, source = choose_weights(image_size, require_bundled)
    if weights_file is None:
        say(f"weights: {source}; using random weights (weights='none'): the pipeline is "
            "tested, the real backbone is not")
    else:
        say(f"weights: {source}: {weights_file}")

    t0 = time.monotonic()
    data = make_images(work / "images", per_class)
    dataset = scan(data, SplitConfig(validation_fraction=0.2, seed=1))
    _check(len(dataset.train) > 0 and len(dataset.validation) > 0,
           f"the generated images did not scan: {dataset.problems}")
    say(f"images: {len(dataset.train)} training, {len(dataset.validation)} validation, "
        f"{dataset.num_classes} classes, {size} px")

    config = TrainConfig(
        image_size=size,
        weights="imagenet" if weights_file else "none",
        weights_dir=None,
        phase1=PhaseConfig(epochs=epochs, learning_rate=1e-3, early_stopping_patience=None),
        phase2=PhaseConfig(epochs=epochs, learning_rate=1e-5, early_stopping_patience=None),
        batch_size=8,
        augment=AugmentConfig(mode="cached_views", views=2),
        split=SplitConfig(validation_fraction=0.2, seed=1),
        device=device,
    )
    events: list[Event] = []
    result = run_training(dataset, config, report=events.append, cancel=threading.Event(),
                          cache=PixelCache(work / "cache"), run_root=work / "runs")
    _check(not result.cancelled, "training was cancelled")
    if result.run is not None:
        status = result.run.read_status()
        say(f"trained on: {status.get('device', {}).get('id')} with the "
            f"{status.get('backend')} backend, {status.get('precision')} precision "
            "(recorded in the run folder)")
    _check(sorted(result.phase_seconds) == [1, 2],
           f"both phases should run, ran {sorted(result.phase_seconds)}")
    started = {e.phase: e for e in events if isinstance(e, PhaseStarted)}
    _check(started[2].trainable_params > started[1].trainable_params,
           "phase 2 trains no more parameters than phase 1: fine-tuning did not unfreeze")
    losses = [row["loss"] for row in result.history]
    _check(len(losses) == 2 * epochs and all(np.isfinite(losses)),
           f"training losses are not finite: {losses}")
    for phase in (1, 2):
        say(f"phase {phase}: {result.phase_seconds[phase]:.1f}s, trainable parameters "
            f"{started[phase].trainable_params:,}, validation accuracy "
            f"{result.phase_accuracy[phase]:.2f}")

    from tlgui.core.predict import load_image

    names = dataset.class_names
    probe = [dataset.samples_of(name)[0].path for name in names]
    expected = np.asarray(result.model.model.predict(
        np.stack([load_image(p, size) for p in probe]), verbose=0))
    _check(bool(np.allclose(expected.sum(axis=1), 1.0, atol=1e-3)),
           "predicted probabilities do not sum to 1")
    for path, probs in zip(probe, expected, strict=True):
        top = int(np.argmax(probs))
        say(f"predict: {path.parent.name}/{path.name} -> {names[top]} ({probs[top]:.2f})")
    for fmt in formats:
        t_fmt = time.monotonic()
        line = _export_and_check(fmt, result.model.model, names, size, work / "export" / fmt,
                                 probe, expected)
        say(f"export {line}, {time.monotonic() - t_fmt:.1f}s")

    if check_qt:
        say(f"Qt: {_check_qt()}")
    if check_sample_data:
        say(f"sample data sets: builders found for {_check_sample_data()}")
    say(f"total {time.monotonic() - t0:.1f}s")


def run_self_test(*, image_size: int | None = None, per_class: int = 10, epochs: int = 1,
                  formats: tuple[str, ...] | None = None, require_bundled: bool | None = None,
                  check_qt: bool = True, check_sample_data: bool = True,
                  stream: TextIO | None = None, device: str = "auto") -> int:
    """Trains both phases on generated images, exports, reloads and predicts.

    Args:
        image_size: a fixed input size; None takes the smallest MobileNetV2 size whose
            weights are on the machine (96 px when none are).
        per_class: generated images per class (3 classes).
        epochs: epochs per phase.
        formats: export formats to write and check; None means
            ``$TLGUI_SELFTEST_FORMATS`` (comma-separated, or ``all``), else keras and
            onnx (the slow savedmodel and tflite conversions take about a minute more).
        require_bundled: fail unless the weights shipped with the app are used; None
            means "when frozen, or when $TLGUI_SELFTEST_REQUIRE_BUNDLED_WEIGHTS is 1".
        check_qt: also start Qt offscreen and import pyqtgraph.
        check_sample_data: also find the tensorflow-datasets builders of the sample
            data sets (no download).
        stream: where the summary goes (default stdout).
        device: the device setting (``auto``, ``cpu``, ``gpu:N``, ``mps``); the self-test
            fails when it names a device the backend does not see.

    Returns:
        0 when every check passed, 1 otherwise (the reason is the last line written).
    """
    out = stream or sys.stdout

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    if formats is None:
        formats = _formats_from_env()
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown:
        say(f"SELF-TEST FAILED: unknown export format(s) {', '.join(unknown)}; "
            f"use {', '.join(ALL_FORMATS)}")
        return 1
    if require_bundled is None:
        require_bundled = is_frozen() or os.environ.get(REQUIRE_BUNDLED_ENV) == "1"
    try:
        with tempfile.TemporaryDirectory(prefix="tlgui-self-test-") as tmp:
            _self_test(Path(tmp), say, image_size=image_size, per_class=per_class,
                       epochs=epochs, formats=tuple(formats), require_bundled=require_bundled,
                       check_qt=check_qt, check_sample_data=check_sample_data,
                       device=device)
    except SelfTestFailure as exc:
        say(f"SELF-TEST FAILED: {exc}")
        return 1
    except Exception as exc:
        log.exception("self-test crashed")
        say(f"SELF-TEST FAILED: {type(exc).__name__}: {exc}")
        return 1
    say("SELF-TEST PASSED")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_self_test())
