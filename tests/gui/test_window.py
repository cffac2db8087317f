"""The window without training: start-up, empty state, dataset panel, settings, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from tests.gui.conftest import TINY, drop_paths
from tlgui.gui import thumbnails as thumbnails_module
from tlgui.gui.main_window import DATA, MainWindow

ROOT = Path(__file__).resolve().parents[2]
WAIT = 120_000

STARTUP_SCRIPT = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import sys
    from PySide6.QtTest import QTest
    from tlgui.app import create_window
    app, win = create_window([], restore_last=False)
    exposed = QTest.qWaitForWindowExposed(win, 10000)
    shown_ms = (time.perf_counter() - t0) * 1000
    heavy = sorted(m for m in ("keras", "tensorflow") if m in sys.modules)
    print(f"exposed={exposed} shown_ms={shown_ms:.0f} heavy_at_show={heavy}", flush=True)
    deadline = time.monotonic() + 120
    while win.compute_info is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    print(f"keras_ready_ms={(time.perf_counter() - t0) * 1000:.0f} "
          f"status={win.compute_label.text()!r}", flush=True)
    win.close()
""")


@pytest.mark.gui
def test_window_is_on_screen_before_tensorflow_loads(tmp_path: Path,  # type: ignore[no-untyped-def]
                                                     record_property) -> None:
    env = dict(os.environ, TLGUI_SETTINGS_DIR=str(tmp_path / "settings"),
               PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", STARTUP_SCRIPT], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    launch_ms = (time.perf_counter() - t0) * 1000
    rest, _ = proc.communicate(timeout=180)
    print(f"\nlaunch to window on screen: {launch_ms:.0f} ms with interpreter start "
          f"({first.strip()}); {rest.strip()}")
    record_property("launch_to_window_ms", round(launch_ms))
    assert proc.returncode == 0
    assert "exposed=True" in first
    assert "heavy_at_show=[]" in first, "keras/tensorflow imported before the window showed"
    assert "Trains on" in rest and ("CPU" in rest or "GPU" in rest)
    assert launch_ms < 20_000


def test_gui_modules_do_not_import_keras() -> None:
    code = ("import sys, tlgui.app, tlgui.gui.main_window, tlgui.gui.jobs, "
            "tlgui.gui.export_dialog, tlgui.gui.sample_dialog, tlgui.gui.training_plot; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.gui
def test_empty_state_says_what_to_do(window) -> None:  # type: ignore[no-untyped-def]
    assert window.tabs.currentIndex() == DATA
    text = window.dataset_panel.empty_label.text()
    assert "its own sub-folder" in text and "drop the top folder" in text
    assert window.dataset_panel.empty_label.height() >= 2 * window.fontMetrics().height(), \
        "the instructions wrap instead of being cut off"
    assert window.dataset_panel.stack.currentIndex() == 0
    assert not window.training_panel.start_button.isEnabled()
    assert "Open a dataset" in window.training_panel.reason_label.text()


@pytest.mark.gui
def test_dataset_panel_counts_problems_thumbnails_and_reveal(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real_load = thumbnails_module.load_thumbnail

    def spy(path: Path, size: int):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real_load(path, size)

    monkeypatch.setattr(thumbnails_module, "load_thumbnail", spy)
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    assert drop_paths(window, [tiny_dataset])
    panel = window.dataset_panel
    qtbot.waitUntil(lambda: panel.class_model.rowCount() == 3, timeout=WAIT)
    assert [panel.class_model.index(r, 0).data() for r in range(3)] == ["blue", "green", "red"]
    assert panel.class_model.index(0, 1).data() == "8"
    assert "6 for validation" in panel.summary_label.text()
    assert "only 8 image(s)" in panel.warnings_label.text()
    assert panel.problems_model.rowCount() == 1
    assert panel.problems_model.index(0, 0).data() == os.path.join("red", "broken.jpg")
    assert "not an image" in panel.problems_model.index(0, 1).data()
    panel.problems_table.selectRow(0)
    panel.reveal_button.click()
    assert [u.toLocalFile() for u in opened] == [str(tiny_dataset / "red")]
    # Thumbnails load lazily, off the GUI thread, for the rows on screen.
    qtbot.waitUntil(lambda: len(window.thumbnails._pixmaps) >= 8, timeout=WAIT)
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert window.windowTitle()
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT)


@pytest.mark.gui
def test_settings_persist_between_sessions(qtbot, settings_dir: Path,  # type: ignore[no-untyped-def]
                                           tiny_dataset: Path) -> None:
    first = MainWindow()
    qtbot.addWidget(first)
    first.model_panel.set_config(TINY)
    first.model_panel.phase1.epochs.setValue(7)
    first.model_panel.phase2.rate.setValue(3e-5)
    first.model_panel.phase1.schedule.setCurrentIndex(
        first.model_panel.phase1.schedule.findData("cosine"))
    first.model_panel.backbones.setCurrentIndex(0)
    first.resize(701, 603)
    first.show()
    first.session.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: first.session.dataset is not None, timeout=WAIT)
    first.move(40, 30)
    geometry = first.geometry()
    first.close()
    assert (settings_dir / "tlgui" / "tlgui.ini").is_file()

    second = MainWindow(restore_last=True)
    qtbot.addWidget(second)
    cfg = second.model_panel.config()
    assert cfg.phase1.epochs == 7
    assert cfg.phase2.learning_rate == pytest.approx(3e-5)
    assert cfg.phase1.schedule == "cosine"  # the "falling" choice, kept with the settings
    assert cfg.image_size == 32 and cfg.weights == "none"
    # The offscreen screen is narrower than the window's minimum width: compare heights.
    assert (second.geometry().y(), second.geometry().height()) == (geometry.y(),
                                                                   geometry.height())
    assert second.dataset_panel.recent_list.item(0).text() == str(tiny_dataset)
    second.show()
    second.start_background_setup()
    qtbot.waitUntil(lambda: second.session.dataset is not None, timeout=WAIT)
    assert second.session.dataset.root == tiny_dataset
    qtbot.waitUntil(lambda: not second.session.busy and second.session.model is not None,
                    timeout=WAIT)
    second.close()


@pytest.mark.gui
def test_errors_name_the_folder_or_file_at_fault(qtbot, window, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 tiny_dataset: Path) -> None:
    missing = tmp_path / "no_such_folder"
    window.session.open_dataset(missing)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None,
                    timeout=WAIT)
    box = window.findChild(QMessageBox, "errorBox")
    assert str(missing) in box.text()
    box.close()
    # A weights file that does not exist: the model tab says which file.
    bad = tmp_path / "weights" / "mine.h5"
    window.model_panel.set_config(TINY.replace(weights=str(bad)))
    window.session.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: window.model_panel.model_error.text() != "", timeout=WAIT)
    assert str(bad) in window.model_panel.model_error.text()
    assert not window.training_panel.start_button.isEnabled()
    assert "cannot be built" in window.training_panel.reason_label.text()


@pytest.mark.gui
def test_missing_imagenet_weights_are_explained(qtbot, settings_dir: Path,  # type: ignore[no-untyped-def]
                                                tiny_dataset: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine is started by this window, so it sees this environment: offline, and
    # no weights anywhere.
    monkeypatch.setenv("TLGUI_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("TLGUI_WEIGHTS_DIR", raising=False)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    window.start_background_setup()
    window.model_panel.set_config(TINY.replace(weights="imagenet", backbone="MobileNetV3Small",
                                               image_size=None))
    window.session.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: window.model_panel.model_error.text() != "", timeout=WAIT)
    text = window.model_panel.model_error.text()
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in text
    assert "no internet" in text
    assert "'A weights file…'" in text  # the words of the Weights box
    # Seen from the Data tab too: why Train stays disabled.
    assert "Training is not possible yet" in window.statusBar().currentMessage()
    window.close()
    assert not window.engine.client.alive, "the window's own engine stops with it"


@pytest.mark.gui
def test_sample_data_offline_message(qtbot, settings_dir: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLGUI_OFFLINE", "1")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    window.start_background_setup()
    window.open_sample_dialog()
    dialog = window.sample_dialog
    dialog.dest.setText(str(tmp_path / "flowers"))
    dialog.fetch_button.click()
    qtbot.waitUntil(lambda: "Could not get" in dialog.message.text(), timeout=WAIT)
    assert "no internet connection" in dialog.message.text()
    assert dialog.fetch_button.isEnabled()
    assert not (tmp_path / "flowers").exists()
    dialog.reject()
    window.close()


def test_a_thumbnail_of_a_named_pipe_does_not_block(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A pipe named like a picture (it can be listed as an error row) gives no picture at
    once instead of waiting forever for a writer."""
    import os
    import threading

    from tests.imagegen import make_image
    from tlgui.gui.thumbnails import load_thumbnail

    pipe = tmp_path / "x.jpg"
    os.mkfifo(pipe)
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(load_thumbnail(pipe, 64)), daemon=True)
    t.start()
    t.join(5)
    assert result and result[0].isNull()  # type: ignore[attr-defined]
    good = tmp_path / "a.jpg"
    make_image((200, 40, 40), (80, 60), 0).save(good)
    assert not load_thumbnail(good, 64).isNull()
