"""Qt adapters only: widgets, item models and workers over ``tlgui.core``."""

from __future__ import annotations

import ctypes
import sys


def _guard_singleton_refcounts() -> bool:
    """Works around PySide6 6.12.0 dropping references to None, True and False.

    With PySide6 6.12.0 and Python 3.11, each call of a Qt method that returns nothing
    (``QLabel.setText``, ``QPainter.setPen``...) lowers ``sys.getrefcount(None)`` by one,
    and each ``signal.emit(...)`` lowers ``sys.getrefcount(True)`` by one. Before Python
    3.12 these objects are not immortal, so after some ten thousand calls (a minute of a
    live plot) the interpreter aborts with "none_dealloc: deallocating None" or
    "bool_dealloc". Python 3.12 avoids this by giving them a huge reference count; this
    does the same. PySide6 6.11 and earlier are not affected, and nothing happens there.

    Returns:
        True when the guard was applied.
    """
    if sys.version_info >= (3, 12):
        return False
    import PySide6

    if not PySide6.__version__.startswith("6.12.0"):
        return False
    # ob_refcnt is the first field of every object in a release build of CPython.
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 48
    return True


SINGLETON_GUARD = _guard_singleton_refcounts()
