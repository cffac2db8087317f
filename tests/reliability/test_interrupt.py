"""Ctrl-C during ``tlgui train``: the run is ``cancelled`` (not ``failed``), the message
says which checkpoint was kept and where, and ``--out`` holds the best finished epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.imagegen import make_dataset
from tlgui import cli
from tlgui.core.events import StageProgress

pytestmark = pytest.mark.timeout(300, method="signal")
TINY = ["--weights", "none", "--image-size", "32", "--batch-size", "8",
        "--fine-tune-at", "140"]


def _status(home: Path) -> dict[str, Any]:
    (run,) = sorted((home / "data" / "runs").iterdir())
    return json.loads((run / "status.json").read_text())


def test_ctrl_c_after_an_epoch_keeps_it_and_writes_out(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d", per_class=8)
    out = tmp_path / "m.keras"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("CACHE", "DATA", "LOG"):
        env[f"TLGUI_{var}_DIR"] = str(tmp_path / var.lower())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tlgui", "train", str(data), *TINY, "--epochs", "1",
         "--fine-tune-epochs", "500", "--patience", "1000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 200
    for line in proc.stderr:  # epoch lines go to stderr, as the progress does
        seen.append(line)
        if "epoch 3 (phase 2)" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    stdout, rest = proc.communicate(timeout=120)
    err = "".join(seen) + rest
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    assert "Cancelled." in err and "is kept in" in err and "model.keras" in err, err
    status = _status(tmp_path)
    assert status["state"] == "cancelled", status
    assert "best finished epoch" in stdout and out.is_file(), stdout
    from tlgui.core.model_file import load_keras

    _, names, _ = load_keras(out)
    assert names == ("blue", "green", "red")


def _interrupt_at_decode(monkeypatch: pytest.MonkeyPatch, times: int) -> None:
    """Presses Ctrl-C ``times`` times when decoding starts (a signal to this process)."""
    real = cli.ConsoleReporter.__call__
    sent = []

    def call(self: Any, event: Any) -> None:
        if isinstance(event, StageProgress) and event.stage == "decode" and not sent:
            sent.append(True)
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # let the handler run before the next press
        real(self, event)

    monkeypatch.setattr(cli.ConsoleReporter, "__call__", call)


def test_ctrl_c_before_the_first_epoch_says_nothing_was_trained(
        isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(isolated_dirs / "d", per_class=8)
    out = isolated_dirs / "m.keras"
    _interrupt_at_decode(monkeypatch, times=1)
    code = cli.main(["train", str(data), *TINY, "--epochs", "2", "--fine-tune-epochs", "0",
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "nothing was trained" in err and "was not written" in err, err
    assert not out.exists()
    assert _status(isolated_dirs)["state"] == "cancelled"


def test_a_second_ctrl_c_still_marks_the_run_cancelled(
        isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(isolated_dirs / "d", per_class=8)
    _interrupt_at_decode(monkeypatch, times=2)
    code = cli.main(["train", str(data), *TINY, "--epochs", "2", "--fine-tune-epochs", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    status = _status(isolated_dirs)
    assert status["state"] == "cancelled", status
    assert "interrupted" in err.lower()
