"""Ctrl-C on the command line: the first press cancels the job cleanly, a second one stops it.

A long job (training, prediction) takes a ``cancel`` event and stops within one batch
when it is set, keeping what it finished (the best epoch's checkpoint). Python turns
Ctrl-C into a ``KeyboardInterrupt`` wherever the code happens to be, which would end
the job as a failure; this handler sets the event instead and says so. A second Ctrl-C
raises ``KeyboardInterrupt`` as usual, for a job that does not stop.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def ctrl_c_cancels(cancel: threading.Event, what: str = "the job") -> Iterator[None]:
    """While the block runs, the first Ctrl-C sets ``cancel``; the next one interrupts.

    Outside the main thread (where signal handlers cannot be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print(f"\nCtrl-C: stopping {what} after the current step (press Ctrl-C again to "  # noqa: T201
              "stop at once).", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
