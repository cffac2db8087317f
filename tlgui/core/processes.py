"""Whether a process still runs, without touching it on any platform."""

from __future__ import annotations

import os
import sys


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (or cannot be ruled out).

    On Windows ``os.kill(pid, 0)`` is not a probe: any signal other than the console
    events ends the process with TerminateProcess, so a pid read from a run's status file
    would kill whatever process has that id now. There the process is opened for a query
    and its exit code asked instead.
    """
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        # OverflowError: a number no process id can be (read from a damaged file).
        return False
    except OSError:  # it exists, as another user's
        return True
    return True


def _windows_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    query_limited_information = 0x1000
    still_active = 259
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:
        access_denied = 5
        return bool(ctypes.get_last_error() == access_denied)  # type: ignore[attr-defined]
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)
