"""Running core work off the GUI thread: a QObject worker moved to a QThread.

A worker runs ``fn(report, cancel)`` and emits ``progress`` (throttled), then exactly
one of ``succeeded(result)``, ``failed(error)`` or ``cancelled``, and ``finished`` last,
always. Cancelling sets a ``threading.Event`` the core checks between batches; threads
are never terminated. ``Job`` owns the thread and keeps itself alive until it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from tlgui.core.errors import Cancelled, TlguiError
from tlgui.core.events import BatchProgress, StageProgress

log = logging.getLogger(__name__)

JobFn = Callable[[Callable[[object], None], threading.Event], Any]
THROTTLE_S = 0.1
# Events that only say "how far": a newer one replaces an older one not yet shown.
_COALESCED = (BatchProgress, StageProgress)
_ACTIVE: set[Job] = set()


class Worker(QObject):
    """Runs one function in its thread and reports through signals.

    Attributes:
        cancel_event: set by ``Job.cancel``; the function checks it.
        partial: the ``Cancelled`` exception a cancelled function raised (it may carry
            what the function left behind).
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: JobFn, name: str, throttle_s: float = THROTTLE_S) -> None:
        super().__init__()
        self._fn = fn
        self._name = name
        self._throttle_s = throttle_s
        self._last_emit = 0.0
        self._pending: object | None = None
        self.cancel_event = threading.Event()
        self.partial: Any = None

    def _report(self, event: object) -> None:
        if isinstance(event, _COALESCED):
            now = time.monotonic()
            if now - self._last_emit < self._throttle_s:
                self._pending = event
                return
            self._pending = None
            self._last_emit = now
            self.progress.emit(event)
            return
        # Epoch ends, phase changes and notices are never dropped; a pending progress
        # event goes first so that the order of what happened is kept.
        self._flush()
        self.progress.emit(event)

    def _flush(self) -> None:
        if self._pending is not None:
            event, self._pending = self._pending, None
            self._last_emit = time.monotonic()
            self.progress.emit(event)

    @Slot()
    def run(self) -> None:
        """Runs the function; called in the worker thread when it starts."""
        outcome: tuple[str, Any] = ("cancelled", None)
        try:
            result = self._fn(self._report, self.cancel_event)
            outcome = ("succeeded", result)
        except Cancelled as exc:
            self.partial = exc
            log.info("%s cancelled", self._name)
        except TlguiError as exc:
            # A user's mistake (an empty folder, a wrong file) is one line, no traceback;
            # one that wraps an unexpected error keeps the traceback for diagnosis.
            log.info("%s failed: %s", self._name, exc, exc_info=exc.__cause__ is not None)
            outcome = ("failed", exc)
        except Exception as exc:
            log.exception("%s failed unexpectedly", self._name)
            outcome = ("failed", exc)
        self._flush()
        kind, value = outcome
        if kind == "succeeded":
            self.succeeded.emit(value)
        elif kind == "failed":
            self.failed.emit(value)
        else:
            self.cancelled.emit()
        self.finished.emit()
        # Hand the object back to the GUI thread so it is deleted there, then end the
        # thread's event loop; quit() is thread-safe, so a GUI thread blocked in
        # wait() still sees the thread end.
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())
        thread = QThread.currentThread()
        thread.quit()


class Job(QObject):
    """A worker and the thread it runs in, seen from the GUI thread.

    The job repeats the worker's signals (``progress``, ``succeeded``, ``failed``,
    ``cancelled``, ``finished`` last) in the GUI thread: the worker's own signals are
    queued to the job's slots, so anything connected to the job, including plain
    functions, runs in the GUI thread. ``ended`` follows once the thread has stopped.

    The outcome is held until the worker's ``finished`` arrives and then repeated just
    before it, in the same turn of the event loop: the worker thread may be descheduled
    between its two emits, and nothing in the GUI may see a job's outcome while the job
    still reads as running (a dialog saying "failed" beside a Train button still disabled).
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal()
    ended = Signal()

    def __init__(self, name: str, fn: JobFn, throttle_s: float = THROTTLE_S,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.qthread = QThread()
        self.qthread.setObjectName(f"tlgui-{name}")
        self.worker = Worker(fn, name, throttle_s)
        self.worker.moveToThread(self.qthread)
        self.qthread.started.connect(self.worker.run)
        self.qthread.finished.connect(self._on_thread_finished)
        self._started = False
        self._outcome: tuple[Callable[..., None], tuple[object, ...]] | None = None
        w = self.worker
        w.progress.connect(self._on_progress)
        w.succeeded.connect(self._on_succeeded)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        w.finished.connect(self._on_finished)

    def start(self) -> Job:
        """Starts the thread; returns self."""
        _ACTIVE.add(self)
        self._started = True
        self.qthread.start()
        return self

    def cancel(self) -> None:
        """Asks the work to stop at its next check (within one batch for training)."""
        self.worker.cancel_event.set()
        self.qthread.requestInterruption()

    def is_running(self) -> bool:
        """True from ``start`` until the thread has ended."""
        return self._started and self in _ACTIVE

    def wait(self, timeout_ms: int = -1) -> bool:
        """Blocks until the thread ends, handling events meanwhile.

        Returns:
            True when the thread ended within the time.
        """
        from PySide6.QtWidgets import QApplication

        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        while self.qthread.isRunning():
            if deadline is not None and time.monotonic() > deadline:
                return False
            QApplication.processEvents()
            self.qthread.wait(20)
        # Deliver the queued signals (finished, ended) before returning.
        QApplication.processEvents()
        return True

    @Slot(object)
    def _on_progress(self, event: object) -> None:
        self.progress.emit(event)

    @Slot(object)
    def _on_succeeded(self, result: object) -> None:
        self._outcome = (self.succeeded.emit, (result,))

    @Slot(object)
    def _on_failed(self, error: object) -> None:
        self._outcome = (self.failed.emit, (error,))

    @Slot()
    def _on_cancelled(self) -> None:
        self._outcome = (self.cancelled.emit, ())

    @Slot()
    def _on_finished(self) -> None:
        outcome, self._outcome = self._outcome, None
        if outcome is not None:
            emit, args = outcome
            emit(*args)
        self.finished.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        _ACTIVE.discard(self)
        self.ended.emit()


def start_job(name: str, fn: JobFn, *, on_progress: Callable[[object], None] | None = None,
              on_success: Callable[[Any], None] | None = None,
              on_failure: Callable[[BaseException], None] | None = None,
              on_cancel: Callable[[], None] | None = None,
              on_finish: Callable[[], None] | None = None,
              throttle_s: float = THROTTLE_S, parent: QObject | None = None) -> Job:
    """Creates, wires and starts a job; the callbacks run in the GUI thread."""
    job = Job(name, fn, throttle_s, parent)
    for signal, slot in ((job.progress, on_progress), (job.succeeded, on_success),
                         (job.failed, on_failure), (job.cancelled, on_cancel),
                         (job.finished, on_finish)):
        if slot is not None:
            signal.connect(slot)
    return job.start()


def running_jobs() -> list[Job]:
    """Every job whose thread has not ended yet."""
    return list(_ACTIVE)


def stop_all(timeout_ms: int = 120_000) -> bool:
    """Cancels every running job and waits for all threads to end.

    Jobs started meanwhile (by a slot reacting to another job's end) are cancelled
    and waited for too.

    Returns:
        True when every thread ended within the time.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while running_jobs():
        for job in running_jobs():
            job.cancel()
        for job in running_jobs():
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not job.wait(left):
                return False
    return True
