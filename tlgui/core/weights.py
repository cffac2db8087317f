"""Finding ImageNet weight files on this machine before any download is tried.

Search order: a folder the user gave, ``$TLGUI_WEIGHTS_DIR``, the folder bundled with an
installer, the Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``). Only then a
download, and only after a quick reachability check, so that an offline machine gets a
clear error within seconds instead of a hang.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from tlgui.core.backbones import BackboneSpec
from tlgui.core.entries import FILE_GONE, EntryProblem, printable, regular_file
from tlgui.core.errors import ConfigError, WeightsNotFound

log = logging.getLogger(__name__)

DOWNLOAD_HOST = "storage.googleapis.com"
CONNECT_TIMEOUT_S = 3.0


def bundled_weights_dirs() -> list[Path]:
    """Folders an installer may have put weight files in."""
    dirs = []
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        dirs.append(Path(frozen_root) / "weights")
        dirs.append(Path(sys.executable).resolve().parent / "weights")
    dirs.append(Path(__file__).resolve().parent.parent / "assets" / "weights")
    return dirs


def keras_cache_dir() -> Path:
    """The folder Keras downloads application weights into."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path.home() / ".keras") / "models"


def search_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    """Every folder searched for weight files, in order."""
    dirs: list[Path] = []
    if weights_dir:
        base = Path(weights_dir).expanduser()
        dirs += [base, base / "models"]
    env = os.environ.get("TLGUI_WEIGHTS_DIR")
    if env:
        base = Path(env).expanduser()
        dirs += [base, base / "models"]
    dirs += bundled_weights_dirs()
    dirs.append(keras_cache_dir())
    return dirs


def find_weights(
    spec: BackboneSpec, image_size: int, weights_dir: str | Path | None = None
) -> Path | None:
    """Returns the local weights file for a backbone, or None when there is none."""
    name = spec.weights_file(image_size)
    for d in search_dirs(weights_dir):
        candidate = d / name
        if candidate.is_file():
            return candidate
    return None


def check_weights_file(path: str | Path) -> Path:
    """A weights file the user named, checked before any work: it must be a regular
    file (Keras would wait forever on a named pipe and read ``/dev/zero`` without end).

    Returns:
        The path, with ``~`` expanded.

    Raises:
        ConfigError: naming the file and what it is instead (missing, a folder, a named
            pipe, a device, unreadable...).
    """
    p = Path(path).expanduser()
    try:
        regular_file(p)
    except EntryProblem as exc:
        if exc.reason == FILE_GONE:
            raise ConfigError(f"The weights file {printable(p)} does not exist.") from exc
        raise ConfigError(f"The weights file {printable(p)} cannot be used: "
                          f"{exc.reason}.") from exc
    return p


def _can_reach(host: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """True when ``host`` answers; always False with ``TLGUI_OFFLINE`` set (labs that
    must never reach the internet, and tests)."""
    if os.environ.get("TLGUI_OFFLINE"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_weights(
    spec: BackboneSpec,
    image_size: int,
    weights_dir: str | Path | None = None,
    allow_download: bool = True,
) -> Path:
    """Finds or downloads the ImageNet weights file of a backbone.

    Args:
        spec: the backbone.
        image_size: input size (MobileNetV2 has one file per size).
        weights_dir: a folder to search first.
        allow_download: try Keras' download when no local file exists.

    Returns:
        The path of the weights file.

    Raises:
        WeightsNotFound: no local file and no download possible; the message names
            the file and the folders where it may be put.
    """
    found = find_weights(spec, image_size, weights_dir)
    if found is not None:
        return found
    name = spec.weights_file(image_size)
    where = search_dirs(weights_dir)
    if allow_download and _can_reach(DOWNLOAD_HOST):
        import keras

        # keras.applications builds the download URL the same way; reuse its cache.
        base = "https://storage.googleapis.com/tensorflow/keras-applications/"
        sub = _DOWNLOAD_SUBDIR.get(spec.name, "")
        try:
            path = keras.utils.get_file(name, base + sub + name, cache_subdir="models")
            return Path(path)
        except Exception as exc:
            log.exception("weights download failed")
            raise WeightsNotFound(
                f"Downloading {name} for {spec.name} failed ({exc}). Put the file in "
                f"{where[0]} or set TLGUI_WEIGHTS_DIR, or pick a weights file."
            ) from exc
    raise WeightsNotFound(
        f"The ImageNet weights for {spec.name} ({name}) are not on this computer and "
        "cannot be downloaded (no internet). Copy that file into one of: "
        + "; ".join(str(d) for d in where[-2:])
        + " — or pick the file itself: Weights → 'A weights file…' on the Model tab "
        "(--weights FILE on the command line), or set TLGUI_WEIGHTS_DIR to its folder."
    )


_DOWNLOAD_SUBDIR = {
    "MobileNetV2": "mobilenet_v2/",
    "MobileNetV3Small": "mobilenet_v3/",
    "MobileNetV3Large": "mobilenet_v3/",
    "EfficientNetV2B0": "efficientnet_v2/",
    "EfficientNetV2S": "efficientnet_v2/",
    "ResNet50V2": "resnet/",
    "ConvNeXtTiny": "convnext/",
    "Xception": "xception/",
    "DenseNet121": "densenet/",
}
