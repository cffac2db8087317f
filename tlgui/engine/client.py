"""The window's side of the engine: starts the process, sends calls, reads what comes back.

Qt-free and Keras-free. ``EngineClient.call`` blocks its caller (a worker thread of the
window) until the job ends, handing each event to ``report``; a reader thread owns the
pipe from the engine and routes each message to the call it belongs to. When the
process dies, every pending call raises ``EngineCrashed`` with what happened, and the next
call starts a new engine.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tlgui.core.errors import Cancelled
from tlgui.core.events import Report, ignore
from tlgui.engine import codec
from tlgui.engine.protocol import ProtocolError, encode, read_message

log = logging.getLogger(__name__)
StateListener = Callable[[str, dict[str, Any]], None]
STDERR_FILE = "engine-stderr.log"
STDERR_KEEP_BYTES = 2_000_000
POLL_S = 0.05


def engine_command() -> list[str]:
    """How to start the engine: the same program in a bundle, the same Python in a venv."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine"]
    return [sys.executable, "-m", "tlgui.engine"]


def describe_exit(code: int | None) -> str:
    """What an exit code says, in words a user can act on."""
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name == "SIGKILL":
            return ("it was killed (SIGKILL), most often because the computer ran out of "
                    "memory")
        if name in ("SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL", "SIGFPE"):
            return f"it crashed ({name})"
        return f"it was stopped by {name}"
    return f"it exited with code {code}"


class EngineClient:
    """One engine process at a time, started on demand.

    Args:
        backend: the Keras backend (``tensorflow``, ``jax``, ``torch``) for the next
            start; None keeps ``KERAS_BACKEND`` or Keras' default.
        device: ``auto``, ``cpu``, ``gpu:N`` or ``mps`` for the next start; None is auto.
        on_state: called from the reader thread with (state, details): ``up``
            (process started), ``ready`` (Keras loaded; ``compute`` describes the device),
            ``setup_failed``, ``dead`` (``description``, ``expected``).
        log_dir: where the engine's raw standard error goes (crash dumps).
    """

    def __init__(self, backend: str | None = None, on_state: StateListener | None = None,
                 log_dir: Path | None = None, device: str | None = None) -> None:
        self.backend = backend
        self.device = device
        self.on_state = on_state
        self.log_dir = log_dir
        self.compute: dict[str, Any] = {}
        self.generation = 0
        self.last_exit = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._pending: dict[int, queue.Queue[tuple[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._stopping = False
        self._running: tuple[str | None, str | None] | None = None

    # -- process ------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """True while an engine process runs."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The engine's process id, or None."""
        return self._proc.pid if self.alive and self._proc else None

    @property
    def running_backend(self) -> str | None:
        """The backend the running engine was started with."""
        return self._running[0] if self.alive and self._running else None

    def _wanted(self) -> tuple[str | None, str | None]:
        return (self.backend, self.device)

    @property
    def busy(self) -> bool:
        """True while calls are running."""
        return bool(self._pending)

    def start(self) -> None:
        """Starts the engine unless it runs already.

        A running engine with another backend or device than asked for is replaced, but
        only when no call is running on it: a change never cuts a job short.
        """
        with self._lock:
            if self.alive and (self._running == self._wanted() or self._pending):
                return
            if self.alive:
                self.stop()
            self._stopping = False
            env = dict(os.environ)
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            env["PYTHONIOENCODING"] = "utf-8"
            if self.backend:
                env["KERAS_BACKEND"] = self.backend
            if self.device:
                env["TLGUI_DEVICE"] = self.device
            kwargs: dict[str, Any] = {}
            if sys.platform == "win32":
                kwargs["creationflags"] = (subprocess.CREATE_NO_WINDOW
                                           | subprocess.CREATE_NEW_PROCESS_GROUP)
            # Elsewhere the engine stays in the window's session: Linux gives every session
            # a scheduling group of its own (autogroup), and a group of its own would get
            # half the processor whatever its priority. It ignores Ctrl-C itself instead.
            stderr = self._stderr_file()
            try:
                self._proc = subprocess.Popen(
                    engine_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=stderr, env=env, **kwargs)
            finally:
                if hasattr(stderr, "close"):
                    stderr.close()
            self._running = self._wanted()
            self.generation += 1
            self.compute = {}
            assert self._proc.stdout is not None
            self._reader = threading.Thread(
                target=self._read_loop, args=(self._proc, self._proc.stdout, self.generation),
                name="tlgui-engine-reader", daemon=True)
            self._reader.start()
            log.info("engine started, pid %d, backend %s", self._proc.pid,
                     self.backend or "default")

    def _stderr_file(self) -> Any:
        if self.log_dir is None:
            return subprocess.DEVNULL
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / STDERR_FILE
            if path.is_file() and path.stat().st_size > STDERR_KEEP_BYTES:
                path.unlink()
            return open(path, "ab")
        except OSError:
            return subprocess.DEVNULL

    def stop(self, grace_s: float = 1.0) -> None:
        """Asks the engine to cancel everything and exit; kills it after ``grace_s``."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            self._stopping = True
            try:
                self._send({"type": "shutdown"})
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("engine did not stop within %.1f s; killing it", grace_s)
                proc.kill()
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    log.error("engine pid %d did not die", proc.pid)
            reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=2)

    def kill(self) -> None:
        """Kills the engine at once, as a crash would (tests use it)."""
        if self._proc is not None and self.alive:
            self._proc.kill()

    # -- messages -----------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise BrokenPipeError("no engine")
        with self._send_lock:
            try:
                proc.stdin.write(encode(message))
                proc.stdin.flush()
            except ValueError as exc:  # the pipe was closed by stop()
                raise BrokenPipeError("the engine's input is closed") from exc

    def _read_loop(self, proc: subprocess.Popen[bytes], stream: IO[bytes],
                   generation: int) -> None:
        try:
            while True:
                message = read_message(stream)
                if message is None:
                    break
                self._route(message)
        except (OSError, ValueError, ProtocolError) as exc:
            log.error("engine stream broken: %s", exc)
            proc.kill()
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        expected = self._stopping
        self.last_exit = describe_exit(code)
        if not expected:
            log.error("engine pid %d ended: %s", proc.pid, self.last_exit)
        with self._lock:
            pending = list(self._pending.values()) if generation == self.generation else []
        for q in pending:
            q.put(("dead", self.last_exit))
        self._notify("dead", {"description": self.last_exit, "expected": expected,
                              "generation": generation})

    def _route(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "hello":
            self._notify("up", {"pid": message.get("pid"), "backend": message.get("backend")})
        elif kind == "ready":
            self.compute = dict(message.get("compute") or {})
            self._notify("ready", {"compute": self.compute})
        elif kind == "setup_failed":
            self._notify("setup_failed", {"error": message.get("error")})
        elif kind in ("event", "done"):
            with self._lock:
                q = self._pending.get(int(message.get("id", -1)))
            if q is not None:
                q.put((kind, message))
        else:
            log.warning("unknown engine message %r", kind)

    def _notify(self, state: str, details: dict[str, Any]) -> None:
        if self.on_state is not None:
            try:
                self.on_state(state, details)
            except Exception:  # a listener's bug must not kill the reader
                log.exception("engine state listener failed")

    # -- calls ----------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None, report: Report = ignore,
             cancel: threading.Event | None = None) -> Any:
        """Runs ``method`` in the engine and returns its result (blocking).

        Args:
            method: the engine's operation (see ``tlgui.engine.handlers``).
            params: its JSON-ready parameters.
            report: receives the job's core events.
            cancel: when set, the engine is asked to stop the job (within one batch).

        Raises:
            Cancelled: the job was cancelled (``exc.partial`` holds what it left, as data).
            TlguiError: the job failed (the engine's error, rebuilt), or the engine
                died (``EngineCrashed``).
        """
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        with self._lock:
            self.start()
            job = next(self._ids)
            self._pending[job] = q
        try:
            # A dead pipe needs no handling here: the reader sees the end and says why.
            with contextlib.suppress(OSError):
                self._send({"type": "call", "id": job, "method": method, "params": params or {}})
            return self._wait(job, q, report, cancel)
        finally:
            with self._lock:
                self._pending.pop(job, None)

    def _wait(self, job: int, q: queue.Queue[tuple[str, Any]], report: Report,
              cancel: threading.Event | None) -> Any:
        asked = False
        while True:
            if cancel is not None and cancel.is_set() and not asked:
                asked = True
                with contextlib.suppress(OSError):
                    self._send({"type": "cancel", "id": job})
            try:
                kind, message = q.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if kind == "event":
                event = codec.event_from_data(message.get("event"))
                if event is not None:
                    report(event)
            elif kind == "done":
                return self._outcome(message)
            elif kind == "dead":
                if self._stopping or asked:
                    raise Cancelled("Stopped: the engine was shut down.")
                raise codec.EngineCrashed(
                    f"The engine running this job stopped unexpectedly: {message}. The "
                    "window is still usable; the next job starts a new engine.")

    @staticmethod
    def _outcome(message: dict[str, Any]) -> Any:
        outcome = message.get("outcome")
        if outcome == "result":
            return message.get("value")
        if outcome == "cancelled":
            exc = Cancelled(str(message.get("message") or "Cancelled by the user."))
            exc.partial = message.get("value")  # type: ignore[attr-defined]
            raise exc
        raise codec.error_from_data(message.get("value"))

    def wait_ready(self, timeout_s: float = 60.0) -> bool:
        """Blocks until Keras has loaded in the engine (tests and benchmarks use it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.compute:
                return True
            time.sleep(POLL_S)
        return False
