"""Exporting a classifier with its preprocessing and class names: .keras, SavedModel, TFLite, ONNX.

Every format takes raw RGB ``uint8`` pixels (or encoded image bytes) and does the
backbone's preprocessing itself; augmentation and dropout are left out. The input
contract of each format is in the README, "Using a trained model outside tlgui".

Where ``out`` ends in the format's suffix it names the main file and companions go
beside it; otherwise ``out`` is a folder:

- ``keras``: ``model.keras`` (class names inside, zip member ``tlgui.json``).
- ``savedmodel``: ``out`` is the SavedModel folder; ``labels.txt`` inside it.
- ``tflite``: ``model.tflite`` (float32), ``model_quant.tflite`` (dynamic-range
  quantized) and ``labels.txt``.
- ``onnx``: ``model.onnx`` (class names in its metadata) and ``labels.txt``.

Writes are atomic: every file is written under a temporary name first and only moved
into place when all of an export's files are complete, so a failed or cancelled export
leaves earlier files intact and no partial ones.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tlgui.core.atomic import TEMP_PREFIX, atomic_path, set_default_mode
from tlgui.core.devices import active_backend
from tlgui.core.errors import Cancelled, ExportError
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.export_bridge import export_through_tensorflow
from tlgui.core.model_file import save_keras
from tlgui.core.precision import float32_copy

log = logging.getLogger(__name__)

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
LABELS_FILE = "labels.txt"
ONNX_OPSET = 17
_SUFFIX = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}
# Layers that only act in training; an exported model skips them.
_TRAINING_ONLY = ("augmentation",)
_KEPT_META = ("backbone", "epoch")


def export_run(run: Path, fmt: str, out: Path, report: Report = ignore,
               cancel: threading.Event | None = None) -> list[Path]:
    """Exports the model of a run folder or of a ``.keras`` file.

    Args:
        run: a run folder (holding ``model.keras``) or a ``.keras`` file.
        fmt: one of ``keras``, ``savedmodel``, ``tflite``, ``onnx``.
        out: destination file or folder (see the module docstring).
        report: receives ``StageProgress("export", ...)`` events.
        cancel: set it to stop; ``Cancelled`` is raised and nothing is written.

    Returns:
        The paths written, main file first.

    Raises:
        ModelFileError: the model cannot be loaded safely.
        ExportError: the export failed; nothing was written.
        Cancelled: ``cancel`` was set.
    """
    from tlgui.core.predict import load_classifier

    check_export_target(fmt, Path(out))
    loaded = load_classifier(run)
    return export_model(loaded.model, loaded.class_names, loaded.image_size, fmt, out,
                        report, cancel, extra=loaded.meta)


def export_model(model: Any, class_names: tuple[str, ...] | list[str], image_size: int,
                 fmt: str, out: Path, report: Report = ignore,
                 cancel: threading.Event | None = None,
                 extra: dict[str, Any] | None = None) -> list[Path]:
    """Exports a classifier taking raw ``uint8`` images in one of ``FORMATS``.

    Args:
        model: the full Keras classifier (uint8 RGB input, softmax output).
        class_names: output order of the classifier.
        image_size: the square side the model resizes to.
        fmt: one of ``keras``, ``savedmodel``, ``tflite``, ``onnx``.
        out: destination file or folder (see the module docstring).
        report: receives ``StageProgress("export", ...)`` events.
        cancel: set it to stop; ``Cancelled`` is raised and nothing is written.
        extra: metadata stored beside the class names in a ``.keras`` file.

    Returns:
        The paths written, main file first.

    Raises:
        ExportError: unknown format, unusable destination, or a converter failed.
        Cancelled: ``cancel`` was set.
    """
    cancel = cancel or threading.Event()
    check_export_target(fmt, Path(out))
    names = tuple(str(n) for n in class_names)
    n_out = int(model.outputs[0].shape[-1])
    if len(names) != n_out:
        raise ExportError(f"{len(names)} class names for a model with {n_out} outputs.")
    _labels_text(names)  # refuse unusable names before any slow conversion
    model = float32_copy(model)  # a model trained in mixed precision leaves as float32
    if fmt != "keras" and active_backend() != "tensorflow":
        return export_through_tensorflow(model, names, image_size, fmt, Path(out),
                                         output_paths(fmt, Path(out)), report, cancel, extra)
    steps = {"keras": 2, "savedmodel": 2, "tflite": 3, "onnx": 2}[fmt]
    progress = _Progress(report, cancel, steps, fmt)
    progress.step("Preparing the inference model")
    try:
        if fmt == "keras":
            written = _export_keras(model, names, image_size, Path(out), progress, extra)
        elif fmt == "savedmodel":
            written = _export_savedmodel(model, names, Path(out), progress)
        elif fmt == "tflite":
            written = _export_tflite(model, names, image_size, Path(out), progress)
        else:
            written = _export_onnx(model, names, image_size, Path(out), progress)
    except (Cancelled, ExportError):
        raise
    except Exception as exc:
        log.exception("%s export to %s failed", fmt, out)
        raise ExportError(f"The {fmt} export to {out} failed: {type(exc).__name__}: {exc}") \
            from exc
    report(StageProgress("export", steps, steps, f"Exported {written[0].name}"))
    return written


def inference_model(model: Any, fixed_size: int | None = None) -> Any:
    """The classifier without its training-only layers, sharing the same weights.

    Augmentation and dropout are skipped. With ``fixed_size`` the input is
    ``uint8 [batch, fixed_size, fixed_size, 3]`` and the resize layer, an identity at
    that size, is skipped too: converters without an anti-aliased resize op accept it.
    """
    import keras

    def skipped(layer: Any) -> bool:
        if layer.name in _TRAINING_ONLY or isinstance(layer, keras.layers.Dropout):
            return True
        if type(layer).__name__.startswith("Random"):
            return True
        return (fixed_size is not None and isinstance(layer, keras.layers.Resizing)
                and (layer.height, layer.width) == (fixed_size, fixed_size))

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        return args[0] if skipped(layer) else layer(*args, **kwargs)

    shape = (fixed_size, fixed_size, 3) if fixed_size else (None, None, 3)
    inputs = keras.Input(shape, dtype="uint8", name="image")
    try:
        return keras.models.clone_model(model, input_tensors=inputs,
                                        clone_function=lambda layer: layer,
                                        call_function=call)
    except (TypeError, ValueError) as exc:
        # Not a functional model: random layers are inactive with training=False anyway.
        log.info("cannot strip training-only layers (%s); wrapping the model as is", exc)
        return keras.Model(inputs, model(inputs, training=False), name=model.name)


def output_paths(fmt: str, out: Path) -> list[Path]:
    """The files (or SavedModel folder) an export to ``out`` writes, main one first."""
    out = Path(out)
    if fmt == "savedmodel":
        return [out]
    suffix = _SUFFIX[fmt]
    main = out if out.suffix.lower() == suffix else out / f"model{suffix}"
    if fmt == "keras":
        return [main]
    if fmt == "tflite":
        return [main, main.with_name(f"{main.stem}_quant{suffix}"), main.parent / LABELS_FILE]
    return [main, main.parent / LABELS_FILE]


# -- formats ----------------------------------------------------------------------------


def _export_keras(model: Any, names: tuple[str, ...], image_size: int, out: Path,
                  progress: _Progress, extra: dict[str, Any] | None) -> list[Path]:
    (target,) = output_paths("keras", out)
    clean = inference_model(model)
    # A whitelist: run metadata may one day hold paths, which must not leave the machine.
    meta = {k: v for k, v in (extra or {}).items() if k in _KEPT_META}
    meta.update(image_size=image_size, input="uint8 RGB [batch, height, width, 3], any size")
    progress.step("Writing the .keras file")
    with _staged([target]) as (tmp,):
        save_keras(clean, tmp, names, meta)
        progress.check()
    return [target]


def _export_savedmodel(model: Any, names: tuple[str, ...], out: Path,
                       progress: _Progress) -> list[Path]:
    import keras
    import tensorflow as tf

    clean = inference_model(model)
    labels = tf.constant(list(names))
    n_classes = len(names)

    def outputs(probs: Any) -> dict[str, Any]:
        n = tf.shape(probs)[0]
        return {"probabilities": probs,
                "class_names": tf.tile(labels[None], [n, 1]),
                "top_class": tf.gather(labels, tf.argmax(probs, axis=-1)),
                "top_probability": tf.reduce_max(probs, axis=-1)}

    def classify_one(data: Any) -> Any:
        # TensorFlow's default JPEG IDCT is the fast, inexact one; the accurate one gives
        # the same pixels as Pillow, which decoded the training images.
        image = tf.cond(
            tf.io.is_jpeg(data),
            lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
        image.set_shape([None, None, 3])
        return clean(image[None], training=False)[0]

    def serve_bytes(image_bytes: Any) -> dict[str, Any]:
        probs = tf.map_fn(classify_one, image_bytes,
                          fn_output_signature=tf.TensorSpec([n_classes], tf.float32))
        return outputs(probs)

    def serve_pixels(image: Any) -> dict[str, Any]:
        return outputs(clean(image, training=False))

    archive = keras.export.ExportArchive()
    archive.track(clean)
    archive.add_endpoint("serving_default", tf.function(serve_bytes, input_signature=[
        tf.TensorSpec([None], tf.string, name="image_bytes")]))
    archive.add_endpoint("serve_pixels", tf.function(serve_pixels, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")]))
    progress.step("Writing the SavedModel")
    with _staged_dir(out) as tmp:
        _write_archive(archive, tmp)
        (tmp / LABELS_FILE).write_text(_labels_text(names), encoding="utf-8")
        progress.check()
    return [out]


def _export_tflite(model: Any, names: tuple[str, ...], image_size: int, out: Path,
                   progress: _Progress) -> list[Path]:
    import keras
    import tensorflow as tf

    fixed, serve = _fixed_size_function(model, image_size, batch=1)
    targets = output_paths("tflite", out)
    with tempfile.TemporaryDirectory(prefix="tlgui-tflite-") as work:
        # Keras' own LiteRT export takes this route too: SavedModel, then converter.
        archive = keras.export.ExportArchive()
        archive.track(fixed)
        archive.add_endpoint("serving_default", serve)
        _write_archive(archive, Path(work))
        blobs = []
        for quantize in (False, True):
            progress.step("Converting to TFLite" + (" (quantized)" if quantize else ""))
            converter = tf.lite.TFLiteConverter.from_saved_model(work)
            if quantize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            blobs.append(bytes(converter.convert()))
            progress.check()
    with _staged(targets) as tmps:
        tmps[0].write_bytes(blobs[0])
        tmps[1].write_bytes(blobs[1])
        tmps[2].write_text(_labels_text(names), encoding="utf-8")
        progress.check()
    return targets


def _export_onnx(model: Any, names: tuple[str, ...], image_size: int, out: Path,
                 progress: _Progress) -> list[Path]:
    import tf2onnx

    _, serve = _fixed_size_function(model, image_size, batch=None)
    progress.step("Converting to ONNX")
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature,
                                             opset=ONNX_OPSET)
    meta = proto.metadata_props.add()
    meta.key, meta.value = "class_names", json.dumps(list(names), ensure_ascii=False)
    size = proto.metadata_props.add()
    size.key, size.value = "image_size", str(image_size)
    progress.check()
    targets = output_paths("onnx", out)
    with _staged(targets) as tmps:
        tmps[0].write_bytes(proto.SerializeToString())
        tmps[1].write_text(_labels_text(names), encoding="utf-8")
        progress.check()
    return targets


# -- helpers ----------------------------------------------------------------------------


def _fixed_size_function(model: Any, image_size: int,
                         batch: int | None) -> tuple[Any, Any]:
    """(inference model, tf.function) taking ``uint8 [batch, size, size, 3]``."""
    import tensorflow as tf

    fixed = inference_model(model, fixed_size=image_size)

    def serve(image: Any) -> dict[str, Any]:
        return {"probabilities": fixed(image, training=False)}

    spec = tf.TensorSpec([batch, image_size, image_size, 3], tf.uint8, name="image")
    return fixed, tf.function(serve, input_signature=[spec])


def _write_archive(archive: Any, folder: Path) -> None:
    archive.write_out(str(folder), verbose=False)


class _Progress:
    def __init__(self, report: Report, cancel: threading.Event, total: int, fmt: str) -> None:
        self.report, self.cancel, self.total, self.fmt = report, cancel, total, fmt
        self.done = 0

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(f"The {self.fmt} export was cancelled; nothing was written.")

    def step(self, message: str) -> None:
        self.check()
        self.report(StageProgress("export", self.done, self.total, message))
        self.done += 1
        self.check()


def _labels_text(names: tuple[str, ...]) -> str:
    for name in names:
        if "\n" in name or "\r" in name:
            raise ExportError(f"The class name {name!r} holds a line break; rename its folder.")
    return "".join(f"{n}\n" for n in names)


@contextlib.contextmanager
def _staged(targets: list[Path]) -> Iterator[list[Path]]:
    """Temp paths beside ``targets``; all are moved into place only if the block succeeds."""
    for target in targets:
        if target.is_dir():
            raise ExportError(f"{target} is a folder; choose a file name or another folder.")
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(target)) for target in targets]


@contextlib.contextmanager
def _staged_dir(target: Path) -> Iterator[Path]:
    """A temp folder beside ``target`` that replaces it only if the block succeeds.

    An existing ``target`` is replaced only when it is itself a SavedModel, so an
    export never deletes a folder of the user's other files.
    """
    _check_savedmodel_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
    old: Path | None = None
    try:
        yield tmp
        set_default_mode(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
                old = None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _check_savedmodel_target(target: Path) -> None:
    if target.exists() and not (target.is_dir() and (target / "saved_model.pb").is_file()):
        raise ExportError(f"{target} already exists and is not a SavedModel folder; choose "
                          "a new folder name.")


def check_export_target(fmt: str, out: Path) -> None:
    """Raises ``ExportError`` when ``out`` cannot take a ``fmt`` export (before any work).

    Args:
        fmt: the format.
        out: the destination given by the user.
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")
    if fmt == "savedmodel":
        _check_savedmodel_target(Path(out))
        return
    for path in output_paths(fmt, Path(out)):
        if path.is_dir():
            raise ExportError(f"{path} is a folder; choose a file name or another folder.")

