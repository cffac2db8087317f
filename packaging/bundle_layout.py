"""What goes into the installer bundle: entry point, icons, weights, exclusions, pruning.

Shared by ``tlgui.spec`` (PyInstaller), ``build.py`` (the build driver the platform
scripts call) and the packaging tests, so the three never disagree. Plain Python, no
PyInstaller import, so tests can load it without building anything.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from pathlib import Path

PACKAGING = Path(__file__).resolve().parent
REPO = PACKAGING.parent
RESOURCES = REPO / "resources"

APP_NAME = "tlgui"
DISPLAY_NAME = "tlgui - Image Classifier Trainer"
BUNDLE_ID = "org.tlgui.tlgui"
ENTRY = PACKAGING / "entry.py"
ICON_ICO = RESOURCES / "tlgui.ico"
ICON_ICNS = RESOURCES / "tlgui.icns"
ICON_PNG = RESOURCES / "tlgui-256.png"
ICON_SVG = RESOURCES / "tlgui.svg"
ASSETS = REPO / "tlgui" / "assets"

# The spec reads the weights folder from here; build.py sets it after resolving it.
WEIGHTS_ENV = "TLGUI_BUNDLE_WEIGHTS_DIR"
# The edition (cpu or gpu) and what the app reads at start to know it: packaging/entry.py.
EDITION_ENV = "TLGUI_BUNDLE_EDITION"
EDITION_FILE = "edition.json"
# The Keras backend each edition runs (docs/adr/004-gpu-backend-per-platform.md). The
# Linux GPU edition is TensorFlow with NVIDIA's pip-packaged CUDA libraries, which
# TensorFlow's libraries find through their RUNPATH ($ORIGIN/../nvidia/<lib>/lib): the
# bundle keeps the nvidia/ folder beside tensorflow/.
EDITIONS = {"cpu": {"backend": "tensorflow"}, "gpu": {"backend": "tensorflow"}}
# The nvidia-* packages the GPU edition carries (tensorflow[and-cuda]'s dependencies).
CUDA_PACKAGES = ("nvidia.cublas", "nvidia.cuda_cupti", "nvidia.cuda_nvcc", "nvidia.cuda_nvrtc",
                 "nvidia.cuda_runtime", "nvidia.cudnn", "nvidia.cufft", "nvidia.curand",
                 "nvidia.cusolver", "nvidia.cusparse", "nvidia.nccl", "nvidia.nvjitlink")
WEIGHTS_DEST = "weights"  # sys._MEIPASS/weights: the first place tlgui.core.weights looks
WEIGHT_SUFFIXES = (".h5", ".keras")
# The app's default (MobileNetV2 at its default 224 px, ADR 013) must work with no download.
REQUIRED_WEIGHTS = ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",)

# Modules the app never imports at run time. Keras' other backends, TensorBoard and test
# frameworks come in through blanket ``collect_submodules`` calls of the TensorFlow hook;
# Qt modules through pyqtgraph's optional imports (not QtOpenGL/QtOpenGLWidgets: pyqtgraph's
# plot items import them by name at run time). SciPy (66 MB) only serves Keras' NumPy
# backend, pyarrow (129 MB) only tensorflow-datasets' Parquet-based sets, gRPC (17 MB)
# only TensorFlow's remote debugger, onnxruntime (35 MB) only Keras' tests: training,
# every export format and sample-data fetching were checked to work without them.
EXCLUDES = (
    "tensorboard", "tensorboard_data_server", "tensorboard_plugin_wit",
    "jax", "jaxlib", "torch", "torchvision", "openvino", "flax",
    "scipy", "pyarrow", "grpc", "grpcio", "onnxruntime",
    "pytest", "_pytest", "pytestqt", "py", "hypothesis", "mypy", "ruff", "IPython",
    "matplotlib", "pandas", "tkinter", "_tkinter",
    "PyQt5", "PyQt6", "PySide2",
    "PySide6.QtTest", "PySide6.QtQml",
    "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtNetwork", "PySide6.QtDBus",
    "PySide6.QtSql", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools",
    "PySide6.QtConcurrent", "PySide6.QtXml",
)

# Pure-Python modules dropped from the archive: unit tests that blanket collection brings.
PRUNE_MODULE_PATTERNS = ("*_test", "*.tests", "*.tests.*", "*.testing.*_test",
                         "keras.src.testing.*", "tensorflow.python.kernel_tests.*",
                         "tensorflow.python.*.kernel_tests.*")
# Files dropped from the bundle (matched against the destination path, "/" separators).
PRUNE_FILE_PATTERNS = (
    "*/testdata/*", "*/tests/*", "*/test_data/*",
    "tensorflow/include/*",
    "PySide6/Qt/translations/*",
    "PySide6/Qt/qml/*",
    "PySide6/Qt/plugins/designer/*", "PySide6/Qt/plugins/qmltooling/*",
    "PySide6/Qt/plugins/sqldrivers/*", "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/plugins/wayland-graphics-integration-server/*",
    "PySide6/Qt/plugins/networkinformation/*", "PySide6/Qt/plugins/tls/*",
    "*.pyi", "*.lib", "*.a",
)
# tensorflow-datasets files that are tests or test data.
TFDS_EXCLUDES = ("**/*_test.py", "**/dummy_data", "**/dummy_data/**", "testing", "testing/**",
                 "**/__pycache__", "**/__pycache__/**")
# Linux only: TensorFlow's libraries carry ~220 MB of symbol tables unused at run time.
# (Libraries that auditwheel patched, in <package>.libs/, break when stripped.)
STRIP_GLOBS = ("tensorflow/*.so*", "tensorflow/**/*.so*")
# Qt translations a user's own language may need for standard dialogs stay.
KEEP_FILE_PATTERNS = ("PySide6/Qt/translations/qtbase_*.qm",)


def edition_info(edition: str) -> dict[str, str]:
    """What ``edition.json`` holds for an edition: its name and Keras backend.

    Raises:
        BuildError: an unknown edition.
    """
    if edition not in EDITIONS:
        raise BuildError(f"Unknown edition '{edition}': use {' or '.join(EDITIONS)}.")
    return {"edition": edition, **EDITIONS[edition]}


class BuildError(Exception):
    """A build input is missing or wrong; the message says what to do."""


def version() -> str:
    """The project version from ``pyproject.toml``."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise BuildError("pyproject.toml has no version")
    return match.group(1)


def default_weights_dir() -> Path | None:
    """``$TLGUI_WEIGHTS_DIR``, else ``../shared/weights/models`` beside the repo, else None."""
    env = os.environ.get("TLGUI_WEIGHTS_DIR")
    if env:
        return Path(env).expanduser()
    shared = REPO.parent / "shared" / "weights" / "models"
    return shared if shared.is_dir() else None


def resolve_weights_dir(given: str | os.PathLike[str] | None) -> Path:
    """The folder of weight files to bundle.

    Args:
        given: a folder from the command line, or None for the default.

    Returns:
        The folder holding the files (a ``models/`` sub-folder is followed, as the app
        does).

    Raises:
        BuildError: no folder given and no default, or it holds no weight files.
    """
    folder = Path(given).expanduser() if given else default_weights_dir()
    if folder is None:
        raise BuildError(
            "No weights folder: pass one (the folder holding "
            f"{REQUIRED_WEIGHTS[0]}), or set TLGUI_WEIGHTS_DIR, or put the files in "
            f"{REPO.parent / 'shared' / 'weights' / 'models'}.")
    if not folder.is_dir():
        raise BuildError(f"The weights folder {folder} does not exist.")
    if not _weight_files(folder) and (folder / "models").is_dir():
        folder = folder / "models"
    return folder.resolve()


def _weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def weight_files(folder: Path) -> list[Path]:
    """The weight files of ``folder`` that go into the bundle.

    Raises:
        BuildError: the folder lacks the default backbone's weights.
    """
    files = _weight_files(folder)
    names = {p.name for p in files}
    missing = [n for n in REQUIRED_WEIGHTS if n not in names]
    if missing:
        raise BuildError(
            f"The weights folder {folder} lacks {', '.join(missing)} (MobileNetV2, the "
            "default backbone, at its default size); the app would need a download. "
            "Add it to the folder (Keras caches it in ~/.keras/models).")
    return files


def _match(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def keep_module(name: str) -> bool:
    """False for pure-Python modules that must not be bundled (tests)."""
    return not _match(name, PRUNE_MODULE_PATTERNS)


def keep_file(dest: str) -> bool:
    """False for data files and binaries the app never uses (headers, tests, QML)."""
    dest = dest.replace("\\", "/")
    if _match(dest, KEEP_FILE_PATTERNS):
        return True
    return not _match(dest, PRUNE_FILE_PATTERNS)


def app_datas(weights_dir: Path) -> list[tuple[str, str]]:
    """(source, destination folder) pairs: the app's assets and the weight files."""
    datas = [(str(p), str(p.parent.relative_to(REPO)))
             for p in sorted(ASSETS.rglob("*")) if p.is_file()] if ASSETS.is_dir() else []
    datas += [(str(p), WEIGHTS_DEST) for p in weight_files(weights_dir)]
    datas.append((str(ICON_PNG), "resources"))
    return datas
