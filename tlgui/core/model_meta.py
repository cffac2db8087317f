"""The metadata inside a ``.keras`` file, read as untrusted input: bounded and validated.

A model file may come from anyone. Its ``tlgui.json`` member is read only when its size
is within ``MAX_META_BYTES`` (and never more than that many bytes are read, whatever the
zip header claims); it must be a JSON object no deeper than ``MAX_DEPTH``, and each key
tlgui uses must have the right type, length and range, else ``ModelFileError`` names
the file and the key. Unknown keys are kept as they are (a newer tlgui may add some).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tlgui.core.entries import control_character, printable
from tlgui.core.errors import ModelFileError
from tlgui.core.json_bounds import json_depth

MAX_META_BYTES = 1 << 20
MAX_DEPTH = 20
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 512
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 2048


def _refuse(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"{printable(path.name)} has unusable tlgui metadata (the "
                          f"tlgui.json inside it): {what}. It was not loaded.")


def parse_metadata(raw: bytes, path: Path) -> dict[str, Any]:
    """Parses and validates the bytes of a ``tlgui.json`` member.

    Raises:
        ModelFileError: too large, not UTF-8 JSON, too deep, not an object, or a key
            with a wrong type, length or range.
    """
    if len(raw) > MAX_META_BYTES:
        raise _refuse(path, f"it is larger than {MAX_META_BYTES // 1024} KiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:  # the C parser's own guard on absurd nesting
        raise _refuse(path, "it is nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refuse(path, f"it is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise _refuse(path, "it is not a JSON object")
    if json_depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise _refuse(path, f"it is nested more than {MAX_DEPTH} levels deep")
    validate_metadata(data, path)
    return data


def validate_metadata(meta: dict[str, Any], path: Path) -> None:
    """Checks the keys tlgui uses; raises ``ModelFileError`` naming the first bad one."""
    names = meta.get("class_names")
    if names is not None:
        if not isinstance(names, list) or not names:
            raise _refuse(path, "class_names is not a list of names")
        if len(names) > MAX_CLASSES:
            raise _refuse(path, f"it lists {len(names):,} class names (at most "
                                f"{MAX_CLASSES:,})")
        for name in names:
            _check_class_name(name, path)
        if len(set(names)) != len(names):
            raise _refuse(path, "a class name appears twice")
    if "image_size" in meta:
        checked_image_size(meta["image_size"], path)
    for key in ("backbone", "format", "input"):
        value = meta.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 200
                                  or control_character(value) is not None):
            raise _refuse(path, f"{key} is not a short text on one line")
    if "mirror_average" in meta and not isinstance(meta["mirror_average"], bool):
        raise _refuse(path, "mirror_average is not true or false")
    for key in ("version", "epoch"):
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= 1_000_000):
            raise _refuse(path, f"{key} is not a whole number in range")


def _check_class_name(name: Any, path: Path) -> None:
    """Refuses a class name that could not be printed, written to a CSV file or used as
    a folder name unchanged: a line break, an escape, a lone surrogate (which no UTF-8
    file or terminal can take), a bidi override (the same rule as for class folders)."""
    if not isinstance(name, str) or not name.strip():
        shown = printable(repr(name)[:60])
        raise _refuse(path, f"the class name {shown} is not a non-empty text")
    if len(name) > MAX_CLASS_NAME:
        raise _refuse(path, f"the class name '{printable(name[:40])}...' is longer than "
                            f"{MAX_CLASS_NAME} characters")
    bad = control_character(name)
    if bad is not None:
        raise _refuse(path, f"the class name '{printable(name[:60])}' holds a line break, "
                            f"another control character or an invalid one ({printable(bad)})")


def checked_image_size(size: Any, path: Path) -> int:
    """``size`` when it is a whole number of pixels in ``MIN_IMAGE_SIZE..MAX_IMAGE_SIZE``.

    Raises:
        ModelFileError: naming the file and the size.
    """
    if isinstance(size, float) and math.isfinite(size) and size.is_integer():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int):
        # "32" (text) or 32.5: saying "32 pixels wide is out of range" would mislead.
        raise ModelFileError(
            f"{printable(Path(path).name)} gives its image size as "
            f"{printable(repr(size)[:40])}, which is not a whole number of pixels. It was "
            "not loaded.")
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise ModelFileError(
            f"{printable(Path(path).name)} says its images are {str(size)[:40]} pixels "
            f"wide; tlgui accepts {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}. It was not loaded.")
    return size


def checked_class_names(meta: dict[str, Any], outputs: Any, path: Path,
                        ) -> tuple[tuple[str, ...], bool]:
    """The class names for a model with ``outputs`` classes.

    Returns:
        (names, named): without tlgui metadata (a plain Keras model) the names are
        ``class_0``, ``class_1``... and ``named`` is False.

    Raises:
        ModelFileError: the output count is not a positive number, or the metadata
            names a different number of classes than the model has.
    """
    if isinstance(outputs, bool) or not isinstance(outputs, int) or outputs < 1:
        raise ModelFileError(f"{printable(path.name)} is not a classifier: its output has "
                             f"shape {outputs!r}.")
    names = meta.get("class_names")
    if names is None:
        if meta:
            raise _refuse(path, "it has no class_names")
        return tuple(f"class_{i}" for i in range(outputs)), False
    if len(names) != outputs:
        raise _refuse(path, f"it names {len(names)} classes but the model has {outputs} "
                            "outputs")
    return tuple(names), True
