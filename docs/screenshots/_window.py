"""What every screenshot script does with the window: let Qt run for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def pump_events(app: Any, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
    """Processes Qt events for ``seconds``, or until ``until()`` is true."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents()
        time.sleep(0.02)
