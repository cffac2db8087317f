"""Test-wide setup: offscreen Qt, isolated user folders, quiet TensorFlow, no leaked threads."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Every test session gets its own cache, data, log and settings folders: tests never
# touch the user's real ones.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="tlgui-tests-"))
for _var, _sub in (("TLGUI_CACHE_DIR", "cache"), ("TLGUI_DATA_DIR", "data"),
                   ("TLGUI_LOG_DIR", "logs"), ("TLGUI_SETTINGS_DIR", "settings")):
    os.environ[_var] = str(_SESSION_HOME / _sub)

SHARED_WEIGHTS = Path(os.environ.get(
    "TLGUI_TEST_WEIGHTS_DIR", Path(__file__).resolve().parents[2] / "shared" / "weights"))
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh cache/data/log folders for one test."""
    for var, sub in (("TLGUI_CACHE_DIR", "cache"), ("TLGUI_DATA_DIR", "data"),
                     ("TLGUI_LOG_DIR", "logs")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


@pytest.fixture
def real_weights_dir() -> Path:
    """The real MobileNetV2 weights (``../shared/weights`` or ``$TLGUI_TEST_WEIGHTS_DIR``).

    Without them a test is skipped with the reason in the summary (``-rs``); in CI, where
    ``TLGUI_REQUIRE_REAL_WEIGHTS=1`` is set, it fails instead.
    """
    if not (SHARED_WEIGHTS / "models").is_dir():
        message = (f"real MobileNetV2 weights not found at {SHARED_WEIGHTS} "
                   "(set TLGUI_TEST_WEIGHTS_DIR)")
        if os.environ.get("TLGUI_REQUIRE_REAL_WEIGHTS"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_WEIGHTS


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fails a test that leaves a QThread (or a non-daemon Python thread) running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate()
              if t not in before and t.is_alive() and not t.daemon]
    try:
        from PySide6.QtCore import QThread
    except ImportError:  # core tests run without Qt installed
        QThread = None  # type: ignore[assignment,misc]
    running_qthreads: list[object] = []
    if QThread is not None:
        import gc

        running_qthreads = [o for o in gc.get_objects()
                            if isinstance(o, QThread) and _qthread_running(o)]
    assert not leaked, f"test left threads running: {leaked}"
    assert not running_qthreads, f"test left QThreads running: {running_qthreads}"


def _qthread_running(thread: object) -> bool:
    try:
        return bool(thread.isRunning())  # type: ignore[attr-defined]
    except RuntimeError:  # the C++ object is already deleted
        return False
