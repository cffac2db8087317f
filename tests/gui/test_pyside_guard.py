"""PySide6 6.12.0 loses references to None/True/False; importing tlgui.gui must prevent a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent("""
    import sys
    import tlgui.gui
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication, QLabel

    class Emitter(QObject):
        fired = Signal(bool)

    app = QApplication([])
    label, emitter = QLabel(), Emitter()
    emitter.fired.connect(lambda flag: None)
    n = 200_000  # far more than the reference counts of None and True at start-up
    for _ in range(n):
        label.setText("x")
        emitter.fired.emit(True)
    print("guard", tlgui.gui.SINGLETON_GUARD, "survived", n)
""")


def test_many_void_calls_and_emits_do_not_abort() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "survived 200000" in out.stdout
