""".keras files with class names inside, saved atomically and loaded in safe mode.

A ``.keras`` file is a zip archive. Keras reads its own members and ignores others, so
the class names travel in an extra member, ``tlgui.json``, that a plain Keras user reads
with ``zipfile``::

    import json, zipfile
    meta = json.loads(zipfile.ZipFile("model.keras").read("tlgui.json"))
    meta["class_names"]
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

from tlgui.core.atomic import atomic_path
from tlgui.core.errors import ModelFileError
from tlgui.core.precision import float32_copy

log = logging.getLogger(__name__)

META_MEMBER = "tlgui.json"
FORMAT_VERSION = 1


def save_keras(model: Any, path: str | Path, class_names: tuple[str, ...] | list[str],
               extra: dict[str, Any] | None = None) -> Path:
    """Saves a Keras model plus its class names as one ``.keras`` file, atomically.

    Args:
        model: the Keras model.
        path: destination; must end in ``.keras``.
        class_names: output order of the classifier.
        extra: more metadata (image size, backbone) stored beside the class names.

    Returns:
        The path written.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"{path.name}: a Keras model file must end in .keras")
    meta = {"format": "tlgui-classifier", "version": FORMAT_VERSION,
            "class_names": list(class_names), **(extra or {})}
    model = float32_copy(model)  # files always hold float32 layers, whatever trained them
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(META_MEMBER, json.dumps(meta, ensure_ascii=False, indent=2))
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The tlgui metadata of a ``.keras`` file (empty dict when absent)."""
    try:
        with zipfile.ZipFile(path) as zf:
            if META_MEMBER not in zf.namelist():
                return {}
            data = json.loads(zf.read(META_MEMBER).decode("utf-8"))
            return data if isinstance(data, dict) else {}
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelFileError(f"{Path(path).name} is not a readable .keras file ({exc}).") \
            from exc


def load_keras(path: str | Path) -> tuple[Any, tuple[str, ...], dict[str, Any]]:
    """Loads a ``.keras`` classifier in Keras safe mode.

    Returns:
        (model, class names, metadata). Without tlgui metadata the names are
        ``class_0``, ``class_1``, ...

    Raises:
        ModelFileError: missing, not a Keras file, or it would run arbitrary code
            (``Lambda`` layers and other pickled functions are refused by safe mode).
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"The model file {path} does not exist.")
    meta = read_metadata(path)
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        text = str(exc)
        log.exception("loading %s failed", path)
        if "safe_mode" in text or "Lambda" in text or "lambda" in text:
            raise ModelFileError(
                f"{path.name} contains code (a Lambda layer or a pickled function) that "
                "would run when loaded; it was refused for safety."
            ) from exc
        raise ModelFileError(f"{path.name} cannot be loaded as a Keras model: {text}") from exc
    names = meta.get("class_names")
    n_out = int(model.outputs[0].shape[-1])
    if not isinstance(names, list) or len(names) != n_out:
        names = [f"class_{i}" for i in range(n_out)]
    return model, tuple(str(n) for n in names), meta
