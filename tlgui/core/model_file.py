""".keras files with class names inside, saved atomically and loaded as untrusted input.

A ``.keras`` file is a zip archive. Keras reads its own members and ignores others, so
the class names travel in an extra member, ``tlgui.json``, that a plain Keras user reads
with ``zipfile``::

    import json, zipfile
    meta = json.loads(zipfile.ZipFile("model.keras").read("tlgui.json"))
    meta["class_names"]

Loading treats the file as untrusted: only a regular file is opened; the zip's
directory is checked before anything is inflated (sizes, compression ratios, room in
the temporary folder); the metadata is bounded and validated (``model_meta``); Keras
loads in safe mode (no code runs) from a private temporary folder that is always
removed, holding the Keras members only (with an extra member Keras itself would
unpack the whole archive into the system's temporary folder).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tlgui.core.atomic import atomic_path
from tlgui.core.entries import EntryProblem, open_regular, printable
from tlgui.core.errors import ModelFileError
from tlgui.core.model_meta import MAX_META_BYTES, checked_class_names, parse_metadata
from tlgui.core.precision import float32_copy

log = logging.getLogger(__name__)

META_MEMBER = "tlgui.json"
FORMAT_VERSION = 1
# Keras' own small members; a larger one is a crafted file.
MAX_CONFIG_BYTES = 64 << 20
# The largest keras.applications backbone with optimizer state is about 4 GiB.
MAX_MODEL_BYTES = 16 << 30
# Weights barely compress; a member inflating more than this is a zip bomb.
MAX_RATIO = 100
MAX_MEMBERS = 10_000
# The metadata key holding the dataset folder a model was trained on (absolute, exact):
# an export of the file is never written into it. Exports leave it out.
DATASET_KEY = "dataset"


def save_keras(model: Any, path: str | Path, class_names: tuple[str, ...] | list[str],
               extra: dict[str, Any] | None = None, *, overwrite: bool = False) -> Path:
    """Saves a Keras model plus its class names as one ``.keras`` file, atomically.

    Args:
        model: the Keras model.
        path: destination; must end in ``.keras``.
        class_names: output order of the classifier.
        extra: more metadata (image size, backbone, ``DATASET_KEY``: the dataset
            trained on) stored beside the class names.
        overwrite: replace an existing file (a run's checkpoint, saved again at each
            better epoch); when False an existing file raises ``DestinationExists``.

    Returns:
        The path written.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"{printable(path.name)}: a Keras model file must end in .keras")
    meta = {"format": "tlgui-classifier", "version": FORMAT_VERSION,
            "class_names": list(class_names), **(extra or {})}
    text = json.dumps(meta, ensure_ascii=False, indent=2)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A path with bytes that are not UTF-8: JSON escapes keep it exact.
        text = json.dumps(meta, ensure_ascii=True, indent=2)
    model = float32_copy(model)  # files always hold float32 layers, whatever trained them
    with atomic_path(path, replace=overwrite) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(META_MEMBER, text)
    return path


def _refuse(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"{printable(path.name)} {why}; it was not loaded.")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        fh = open_regular(path)
    except EntryProblem as exc:
        raise ModelFileError(f"The model file {printable(path)} cannot be opened: "
                             f"{exc.reason}.") from exc
    try:
        if os.fstat(fh.fileno()).st_size == 0:
            raise _refuse(path, "is empty (0 bytes)")
        return zipfile.ZipFile(fh)
    except ModelFileError:
        fh.close()
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        fh.close()
        raise _refuse(path, f"is not a .keras file or is damaged (the zip archive cannot "
                            f"be read: {exc})") from exc


def _check_members(zf: zipfile.ZipFile, path: Path) -> list[zipfile.ZipInfo]:
    """The archive's members, refused before inflating if they are absurd."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _refuse(path, f"holds {len(infos):,} files (a model holds a few)")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(
                info.compress_size, 1):
            raise _refuse(path, f"holds {info.filename!r}, which would inflate "
                                f"{info.file_size / max(info.compress_size, 1):,.0f}-fold "
                                f"to {info.file_size / 2**20:,.0f} MiB (a zip bomb)")
        limit = MAX_META_BYTES if info.filename == META_MEMBER else \
            MAX_CONFIG_BYTES if info.filename.endswith(".json") else MAX_MODEL_BYTES
        if info.file_size > limit:
            raise _refuse(path, f"holds {info.filename!r} of {info.file_size / 2**20:,.0f} "
                                f"MiB, more than a model's file can hold")
    if total > MAX_MODEL_BYTES:
        raise _refuse(path, f"would inflate to {total / 2**30:,.1f} GiB")
    return infos


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    try:
        with zf.open(name) as fh:
            data = fh.read(limit + 1)  # never more, whatever the header claims
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _refuse(path, f"is damaged ({name} cannot be read: {exc})") from exc
    if len(data) > limit:
        raise _refuse(path, f"holds a {name} larger than {limit // 1024} KiB")
    return data


def trained_on(meta: dict[str, Any]) -> Path | None:
    """The dataset folder a model's metadata names (None when it names none)."""
    root = meta.get(DATASET_KEY)
    return Path(root) if isinstance(root, str) and root else None


def dataset_of(path: str | Path) -> Path | None:
    """The dataset a ``.keras`` file says it was trained on; None when it says nothing
    or cannot be read (loading it then says why)."""
    try:
        return trained_on(read_metadata(path))
    except (ModelFileError, OSError):
        return None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The validated tlgui metadata of a ``.keras`` file (empty dict when absent).

    Raises:
        ModelFileError: not a readable zip, or the metadata is too large, malformed or
            holds values of the wrong type, length or range.
    """
    path = Path(path)
    with _open_zip(path) as zf:
        infos = _check_members(zf, path)
        if META_MEMBER not in {i.filename for i in infos}:
            return {}
        return parse_metadata(_read_member(zf, META_MEMBER, MAX_META_BYTES, path), path)


def _copy_for_keras(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], path: Path,
                    folder: Path) -> Path:
    """Writes the Keras members, stored uncompressed, into ``folder``; checks the room."""
    need = sum(i.file_size for i in infos if i.filename != META_MEMBER)
    free = shutil.disk_usage(folder).free
    if need + (64 << 20) > free:
        raise ModelFileError(
            f"Not enough room in the temporary folder {printable(folder.parent)} to open "
            f"{printable(path.name)}: it needs {need / 2**20:,.0f} MiB, "
            f"{free / 2**20:,.0f} MiB are free. Free some space or set TMPDIR.")
    copy = folder / "model.keras"
    try:
        with zipfile.ZipFile(copy, "w", compression=zipfile.ZIP_STORED) as out:
            for info in infos:
                if info.filename == META_MEMBER:
                    continue
                with zf.open(info) as src, out.open(info.filename, "w",
                                                    force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise _refuse(path, f"is damaged (a member cannot be read: {exc})") from exc
    except OSError as exc:
        raise ModelFileError(f"Cannot unpack {printable(path.name)} into the temporary "
                             f"folder {printable(folder.parent)}: {exc.strerror or exc}."
                             ) from exc
    return copy


def load_keras(path: str | Path) -> tuple[Any, tuple[str, ...], dict[str, Any]]:
    """Loads a ``.keras`` classifier as untrusted input, in Keras safe mode.

    Returns:
        (model, class names, metadata). A plain Keras file without tlgui metadata gets
        the names ``class_0``, ``class_1``... and ``metadata["class_names_missing"]``
        set to True, so a caller can say so.

    Raises:
        ModelFileError: missing, not a regular file, empty, damaged, a zip bomb, bad
            metadata (class names that do not match the outputs, an absurd image
            size...), not an image classifier, or it would run code when loaded
            (``Lambda`` layers and other pickled functions are refused by safe mode).
    """
    import keras

    path = Path(path)
    if not os.path.lexists(path):
        raise ModelFileError(f"The model file {printable(path)} does not exist.")
    with _open_zip(path) as zf:
        infos = _check_members(zf, path)
        names = {i.filename for i in infos}
        meta = parse_metadata(_read_member(zf, META_MEMBER, MAX_META_BYTES, path), path) \
            if META_MEMBER in names else {}
        for member in ("config.json", "metadata.json"):
            if member in names:
                _read_member(zf, member, MAX_CONFIG_BYTES, path)  # CRC checked early
        work = Path(tempfile.mkdtemp(prefix="tlgui-load-"))
        try:
            copy = _copy_for_keras(zf, infos, path, work)
            model = _keras_load(keras, copy, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    _check_shapes(model, path)
    class_names, named = checked_class_names(meta, _outputs(model), path)
    if not named:
        meta = {**meta, "class_names_missing": True}
    return model, class_names, meta


def _keras_load(keras: Any, copy: Path, path: Path) -> Any:
    try:
        return keras.models.load_model(copy, safe_mode=True, compile=False)
    except Exception as exc:
        text = str(exc).replace(str(copy), str(path))
        log.exception("loading %s failed", path)
        if "safe_mode" in text or "Lambda" in text or "lambda" in text:
            raise ModelFileError(
                f"{printable(path.name)} contains code (a Lambda layer or a pickled "
                "function) that would run when loaded; it was refused for safety."
            ) from exc
        raise ModelFileError(f"{printable(path.name)} cannot be loaded as a Keras model: "
                             f"{text[:500]}") from exc


def _outputs(model: Any) -> Any:
    shape = tuple(model.outputs[0].shape)
    return shape[-1] if len(shape) == 2 else shape


def _check_shapes(model: Any, path: Path) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise _refuse(path, f"is not an image classifier (it has {len(model.inputs)} "
                            f"inputs and {len(model.outputs)} outputs)")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] not in (3, None):
        raise _refuse(path, f"is not an image classifier (its input has shape {shape}, "
                            "not [batch, height, width, 3])")
