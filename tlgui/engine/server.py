"""The engine process: reads calls from standard input, answers on standard output.

Standard output carries the protocol alone: at start its file descriptor is duplicated
for the protocol and fd 1 is pointed at standard error, so a library that prints (Keras,
TensorFlow's C++ code) cannot corrupt the stream. Standard error goes to a file the
window chose; tracebacks go to the engine's log file.

The main thread reads messages; each call runs in a thread of its own, so a cancel or a
shutdown is read at once while a job runs. Keras is imported in the background right
after start-up; calls that need it wait for it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from tlgui.core.errors import Cancelled, TlguiError
from tlgui.core.events import BatchProgress, Event, StageProgress
from tlgui.engine import codec
from tlgui.engine.protocol import ProtocolError, encode, read_message

log = logging.getLogger("tlgui.engine")
THROTTLE_S = 0.1
# The window's device setting (auto, cpu, gpu:N, mps) for this engine process.
DEVICE_ENV = "TLGUI_DEVICE"
SHUTDOWN_GRACE_S = 0.8


class _Job:
    """One running call: its cancel event and its throttled event stream."""

    def __init__(self, server: Server, job: int, method: str) -> None:
        self.server, self.id, self.method = server, job, method
        self.cancel = threading.Event()
        self._last = 0.0
        self._pending: Event | None = None

    def report(self, event: Event) -> None:
        # Progress says "how far": a newer one replaces one not sent yet, at most 10/s.
        if isinstance(event, (BatchProgress, StageProgress)):
            now = time.monotonic()
            if now - self._last < THROTTLE_S:
                self._pending = event
                return
            self._last, self._pending = now, None
        else:
            self.flush()
        self.server.send({"type": "event", "id": self.id, "event": codec.event_to_data(event)})

    def flush(self) -> None:
        if self._pending is not None:
            event, self._pending = self._pending, None
            self._last = time.monotonic()
            self.server.send({"type": "event", "id": self.id,
                              "event": codec.event_to_data(event)})


class Server:
    """Dispatches calls to the handlers, one thread per call."""

    def __init__(self, out: IO[bytes]) -> None:
        from tlgui.engine.handlers import Handlers

        self.out = out
        self.lock = threading.Lock()
        self.jobs: dict[int, _Job] = {}
        self.keras_ready = threading.Event()
        self.keras_error: BaseException | None = None
        self.handlers = Handlers(self)
        self.log_file: str | None = None

    def send(self, message: dict[str, Any]) -> None:
        data = encode(message)
        with self.lock:
            try:
                self.out.write(data)
                self.out.flush()
            except (OSError, ValueError):
                pass  # the window is gone; the read loop ends the process

    # -- set-up -------------------------------------------------------------------
    def load_keras(self) -> None:
        try:
            from tlgui.backend_import import import_keras_quietly
            from tlgui.core.devices import describe_compute

            import_keras_quietly()
            info = describe_compute(os.environ.get(DEVICE_ENV, "auto"))
            compute = {"device": info.device.to_dict(), "device_label": info.device.label(),
                       "backend": info.backend, "keras_version": info.keras_version,
                       "devices": [d.to_dict() for d in (info.device, *info.others)],
                       "status": info.status_text()}
            self.send({"type": "ready", "compute": compute})
        except BaseException as exc:
            log.exception("Keras failed to load")
            self.keras_error = exc
            self.send({"type": "setup_failed", "error": codec.error_to_data(exc, self.log_file)})
        finally:
            self.keras_ready.set()

    def need_keras(self) -> None:
        """Waits for the background import; raises what it raised."""
        self.keras_ready.wait()
        if self.keras_error is not None:
            raise TlguiError(f"Keras could not be loaded: {self.keras_error}")

    # -- calls ----------------------------------------------------------------------
    def start_call(self, message: dict[str, Any]) -> None:
        job = _Job(self, int(message["id"]), str(message.get("method")))
        params = message.get("params") or {}
        self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, params), daemon=True,
                         name=f"tlgui-job-{job.id}-{job.method}").start()

    def _run(self, job: _Job, params: dict[str, Any]) -> None:
        done: dict[str, Any] = {"type": "done", "id": job.id}
        try:
            value = self.handlers.run(job.method, params, job.report, job.cancel)
            done.update(outcome="result", value=value)
        except Cancelled as exc:
            done.update(outcome="cancelled", message=str(exc),
                        value=getattr(exc, "partial", None))
        except TlguiError as exc:
            # One line for a user's mistake; the traceback when it wraps an unexpected error.
            log.info("%s failed: %s", job.method, exc, exc_info=exc.__cause__ is not None)
            done.update(outcome="error", value=codec.error_to_data(exc))
        except Exception as exc:
            log.exception("%s failed unexpectedly", job.method)
            done.update(outcome="error", value=codec.error_to_data(exc, self.log_file))
        job.flush()
        self.jobs.pop(job.id, None)
        self.send(done)

    def cancel_all(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel.set()

    def serve(self, stream: IO[bytes]) -> None:
        """Reads messages until ``shutdown`` or the end of the stream (the window closed)."""
        while True:
            try:
                message = read_message(stream)
            except ProtocolError as exc:
                log.error("bad message from the window: %s", exc)
                continue
            if message is None or message["type"] == "shutdown":
                break
            if message["type"] == "call":
                self.start_call(message)
            elif message["type"] == "cancel":
                job = self.jobs.get(int(message.get("id", -1)))
                if job is not None:
                    job.cancel.set()
        self.cancel_all()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while self.jobs and time.monotonic() < deadline:
            time.sleep(0.02)


def lower_priority() -> None:
    """Lets the window win the processor whenever it wants it.

    Training keeps every core busy; at the same priority a window on a 2-core machine
    waited 40-100 ms for its turn, now and then, while the engine trained. At a lower
    priority the engine still gets all the time the window does not use.
    ``TLGUI_ENGINE_NICE`` sets the niceness (0 keeps the window's priority).
    """
    try:
        nice = int(os.environ.get("TLGUI_ENGINE_NICE", "10"))
    except ValueError:
        nice = 10
    if nice <= 0:
        return
    try:
        if sys.platform == "win32":
            import ctypes

            below_normal = 0x00004000
            handle = ctypes.windll.kernel32.GetCurrentProcess()  # type: ignore[attr-defined]
            ctypes.windll.kernel32.SetPriorityClass(handle, below_normal)  # type: ignore[attr-defined]
        else:
            os.nice(nice)
            # Started in a session of its own, it would be in a scheduling group of its
            # own too, where its niceness means nothing to other groups: lower the group.
            with contextlib.suppress(OSError):
                Path("/proc/self/autogroup").write_text(str(nice))
    except (OSError, AttributeError):
        log.warning("cannot lower the engine's priority", exc_info=True)


def main() -> int:
    """Runs the engine on this process's standard streams; returns the exit code."""
    if hasattr(signal, "SIGINT") and sys.platform != "win32":
        # Ctrl-C in a terminal reaches the whole process group; the window decides and
        # stops the engine itself (cancel, then shutdown).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    lower_priority()
    from tlgui.core.devices import configure_process

    # Before anything imports Keras: the backends read their device variables once.
    configure_process(os.environ.get(DEVICE_ENV, "auto"))
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # whatever prints now goes to standard error, never into the protocol
    sys.stdout = sys.stderr
    faulthandler.enable(file=sys.stderr)
    from tlgui.logs import setup_logging

    log_file = setup_logging(file_name="engine.log")
    server = Server(proto)
    server.log_file = str(log_file) if log_file else None
    server.send({"type": "hello", "pid": os.getpid(),
                 "backend": os.environ.get("KERAS_BACKEND", "tensorflow")})
    threading.Thread(target=server.load_keras, name="tlgui-keras-import", daemon=True).start()
    server.serve(sys.stdin.buffer)
    log.info("engine exits")
    sys.stderr.flush()
    # TensorFlow's thread pools can hold up a normal interpreter exit for seconds.
    os._exit(0)
