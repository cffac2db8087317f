"""pid_alive probes a process without ever signalling it on Windows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tlgui.core import processes


def test_alive_dead_and_impossible_ids() -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    assert processes.pid_alive(os.getpid())
    assert not processes.pid_alive(int(proc.stdout))
    assert not processes.pid_alive(0) and not processes.pid_alive(-5)


def test_on_windows_no_signal_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.kill(pid, 0) on Windows terminates the process: it must not be called there."""
    def no_kill(*_a: object) -> None:
        raise AssertionError("os.kill called on Windows")

    asked: list[int] = []
    monkeypatch.setattr(processes.sys, "platform", "win32")
    monkeypatch.setattr(processes.os, "kill", no_kill)
    monkeypatch.setattr(processes, "_windows_alive", lambda pid: asked.append(pid) or False)
    assert not processes.pid_alive(424242)
    assert asked == [424242]
