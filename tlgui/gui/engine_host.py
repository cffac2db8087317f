"""The window's handle on the engine process: its state as Qt signals, calls for workers.

``EngineHost`` owns one ``EngineClient``. The client's reader thread reports the
engine's state (up, ready, dead); the host turns that into ``state_changed`` in the GUI
thread and keeps a line for the status bar. Jobs call the engine from their worker
threads through ``call``: the GUI thread never waits for the engine.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from tlgui.core.events import Report
from tlgui.core.paths import log_dir
from tlgui.engine.client import EngineClient

log = logging.getLogger(__name__)
BACKENDS = ("tensorflow", "jax", "torch")
CLOSE_GRACE_S = 1.0


class EngineHost(QObject):
    """The engine process seen from the window.

    Attributes:
        state: ``stopped``, ``starting``, ``up``, ``ready``, ``failed`` or ``dead``.
        status: one line for the status bar.
        compute: what training runs on, once the engine is ready.
    """

    state_changed = Signal(str, object)

    def __init__(self, backend: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = EngineClient(backend, on_state=self._from_reader, log_dir=log_dir())
        self.state = "stopped"
        self.status = "Engine not started"
        self.compute: dict[str, Any] = {}
        self.closing = False
        self.state_changed.connect(self._on_state)

    def _from_reader(self, state: str, details: dict[str, Any]) -> None:
        # Called in the reader thread: a queued signal hands it to the GUI thread.
        self.state_changed.emit(state, details)

    def _on_state(self, state: str, details: object) -> None:
        info = details if isinstance(details, dict) else {}
        if state == "dead" and info.get("generation", self.client.generation) \
                != self.client.generation:
            return  # an older engine, already replaced
        self.state = state
        if state == "up":
            self.status = "Engine starting: loading Keras…"
        elif state == "ready":
            self.compute = dict(info.get("compute") or {})
            self.status = f"Engine ready · {self.compute.get('status', '')}"
        elif state == "setup_failed":
            error = info.get("error") or {}
            self.status = f"Keras failed to load in the engine: {error.get('message', '')}"
        elif state == "dead":
            self.compute = {}
            self.status = ("Engine stopped" if info.get("expected") else
                           f"Engine stopped: {info.get('description')}; the next job starts "
                           "a new one")

    # -- control ------------------------------------------------------------------
    def start(self) -> None:
        """Starts the engine in the background (the window does not wait)."""
        if self.closing:
            return
        self.state = "starting"
        self.status = "Starting the engine…"
        threading.Thread(target=self._start, name="tlgui-engine-start", daemon=True).start()

    def _start(self) -> None:
        try:
            self.client.start()
        except OSError as exc:
            log.exception("cannot start the engine")
            self.state_changed.emit("setup_failed", {"error": {"message": str(exc)}})

    @property
    def backend(self) -> str | None:
        """The backend asked for (None: the default)."""
        return self.client.backend

    def set_backend(self, backend: str | None) -> None:
        """Uses ``backend`` from the next job on; a running engine with another is replaced
        when it is idle, now."""
        if backend == self.client.backend:
            return
        self.client.backend = backend
        if self.client.alive:
            self.start()  # start() replaces an engine whose backend differs

    def call(self, method: str, params: dict[str, Any], report: Report,
             cancel: threading.Event) -> Any:
        """Runs an engine operation; for worker threads only (it blocks)."""
        return self.client.call(method, params, report, cancel)

    def shutdown(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Stops the engine: cancel, then kill after ``grace_s``. No process stays behind."""
        self.closing = True
        self.client.stop(grace_s)

    def log_folder(self) -> Path:
        """Where the engine's log and crash output are."""
        return log_dir()
