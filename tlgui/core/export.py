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
leaves earlier files intact and no partial ones. Every file an export writes is checked
before the conversion starts (``export_files.check_export_target``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from tlgui.core.devices import active_backend
from tlgui.core.errors import (
    Cancelled,
    ConfigError,
    DestinationExists,
    ExportError,
    UnsafeDestination,
)
from tlgui.core.events import Report, StageProgress, ignore
from tlgui.core.export_bridge import export_through_tensorflow
from tlgui.core.export_files import (  # noqa: F401 - output_paths etc. are imported from here
    FORMATS,
    LABELS_FILE,
    check_export_target,
    failure,
    output_paths,
    staged,
    staged_dir,
)
from tlgui.core.mirror_tta import has_mirror, training_only
from tlgui.core.model_file import dataset_of, save_keras
from tlgui.core.precision import float32_copy
from tlgui.core.runs import MODEL_FILE, run_dataset

log = logging.getLogger(__name__)

ONNX_OPSET = 17
_KEPT_META = ("backbone", "epoch")


def export_run(run: Path, fmt: str, out: Path, report: Report = ignore,
               cancel: threading.Event | None = None, *, overwrite: bool = False,
               mirror: bool = False) -> list[Path]:
    """Exports the model of a run folder or of a ``.keras`` file.

    Args:
        run: a run folder (holding ``model.keras``) or a ``.keras`` file.
        fmt: one of ``keras``, ``savedmodel``, ``tflite``, ``onnx``.
        out: destination file or folder (see the module docstring).
        report: receives ``StageProgress("export", ...)`` events.
        cancel: set it to stop; ``Cancelled`` is raised and nothing is written.
        overwrite: replace existing files (never the model being exported).
        mirror: average each image's answer with its mirror's in the exported model.

    Returns:
        The paths written, main file first.

    Raises:
        ModelFileError: the model cannot be loaded safely.
        DestinationExists: a file the export would write exists (``overwrite`` False).
        UnsafeDestination: a destination is the model itself, or a folder of other files.
        ExportError: the export failed; nothing was written.
        Cancelled: ``cancel`` was set.
    """
    from tlgui.core.predict import load_classifier

    run = Path(run).expanduser()
    source = run / MODEL_FILE if run.is_dir() else run
    # Nor inside the dataset the model was trained on: a run folder's status names it,
    # and so does the metadata of a model file tlgui trained (a bare .keras file).
    datasets = [d for d in (run_dataset(run) if run.is_dir() else None, dataset_of(source))
                if d is not None]
    check_export_target(fmt, Path(out), overwrite=overwrite, model=source, inputs=datasets)
    loaded = load_classifier(run)
    return export_model(loaded.model, loaded.class_names, loaded.image_size, fmt, out,
                        report, cancel, extra=loaded.meta, overwrite=overwrite,
                        model_path=source, mirror=mirror)


def export_model(model: Any, class_names: tuple[str, ...] | list[str], image_size: int,
                 fmt: str, out: Path, report: Report = ignore,
                 cancel: threading.Event | None = None,
                 extra: dict[str, Any] | None = None, *, overwrite: bool = False,
                 model_path: Path | None = None, mirror: bool = False) -> list[Path]:
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
        overwrite: replace existing files (an earlier export, a ``labels.txt``).
        model_path: the file the model was loaded from; never overwritten.
        mirror: the exported model averages each image's answer with its mirror's
            (``mirror_tta``); it costs twice the computation per image.

    Returns:
        The paths written, main file first.

    Raises:
        DestinationExists: a file the export would write exists (``overwrite`` False).
        UnsafeDestination: a destination is the model file, a folder of other files,
            or a file where a folder is needed.
        WriteError: a file cannot be written (the message names it and the reason).
        ExportError: unknown format, or a converter failed.
        Cancelled: ``cancel`` was set.
    """
    cancel = cancel or threading.Event()
    out = Path(out).expanduser()
    check_export_target(fmt, out, overwrite=overwrite, model=model_path)
    names = tuple(str(n) for n in class_names)
    n_out = int(model.outputs[0].shape[-1])
    if len(names) != n_out:
        raise ExportError(f"{len(names)} class names for a model with {n_out} outputs.")
    _labels_text(names)  # refuse unusable names before any slow conversion
    model = float32_copy(model)  # a model trained in mixed precision leaves as float32
    if mirror:
        from tlgui.core.mirror_tta import mirror_average

        try:
            model = mirror_average(model)
        except ConfigError as exc:
            raise ExportError(f"Cannot export {model_path.name if model_path else 'the model'} "
                              f"with mirror averaging: {exc}") from exc
    if fmt != "keras" and active_backend() != "tensorflow":
        return export_through_tensorflow(model, names, image_size, fmt, Path(out),
                                         output_paths(fmt, Path(out)), report, cancel, extra,
                                         overwrite=overwrite)
    steps = {"keras": 2, "savedmodel": 2, "tflite": 3, "onnx": 2}[fmt]
    progress = _Progress(report, cancel, steps, fmt)
    progress.step("Preparing the inference model")
    try:
        if fmt == "keras":
            written = _export_keras(model, names, image_size, out, progress, extra, overwrite)
        elif fmt == "savedmodel":
            written = _export_savedmodel(model, names, out, progress, overwrite)
        elif fmt == "tflite":
            written = _export_tflite(model, names, image_size, out, progress, overwrite)
        else:
            written = _export_onnx(model, names, image_size, out, progress, overwrite)
    except (Cancelled, ExportError, DestinationExists, UnsafeDestination):
        raise
    except Exception as exc:
        log.exception("%s export to %s failed", fmt, out)
        raise failure(fmt, out, exc) from exc
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
        if training_only(layer):
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


# -- formats ----------------------------------------------------------------------------


def _export_keras(model: Any, names: tuple[str, ...], image_size: int, out: Path,
                  progress: _Progress, extra: dict[str, Any] | None,
                  overwrite: bool) -> list[Path]:
    (target,) = output_paths("keras", out)
    clean = inference_model(model)
    # A whitelist: run metadata may one day hold paths, which must not leave the machine.
    meta = {k: v for k, v in (extra or {}).items() if k in _KEPT_META}
    # Said by the model itself, never copied from the (untrusted) file it came from.
    meta.update(image_size=image_size, input="uint8 RGB [batch, height, width, 3], any size",
                mirror_average=has_mirror(clean))
    progress.step("Writing the .keras file")
    with staged([target], overwrite) as (tmp,):
        save_keras(clean, tmp, names, meta, overwrite=True)  # tmp is this export's own
        progress.check()
    return [target]


def _export_savedmodel(model: Any, names: tuple[str, ...], out: Path,
                       progress: _Progress, overwrite: bool) -> list[Path]:
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
    with staged_dir(out, overwrite) as tmp:
        _write_archive(archive, tmp)
        (tmp / LABELS_FILE).write_text(_labels_text(names), encoding="utf-8")
        progress.check()
    return [out]


def _export_tflite(model: Any, names: tuple[str, ...], image_size: int, out: Path,
                   progress: _Progress, overwrite: bool) -> list[Path]:
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
    with staged(targets, overwrite) as tmps:
        tmps[0].write_bytes(blobs[0])
        tmps[1].write_bytes(blobs[1])
        tmps[2].write_text(_labels_text(names), encoding="utf-8")
        progress.check()
    return targets


def _export_onnx(model: Any, names: tuple[str, ...], image_size: int, out: Path,
                 progress: _Progress, overwrite: bool) -> list[Path]:
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
    with staged(targets, overwrite) as tmps:
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
