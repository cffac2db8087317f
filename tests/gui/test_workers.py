"""The worker contract: progress, then one of succeeded/failed/cancelled, finished last."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from PySide6.QtCore import Qt, QThread, QTimer

from tlgui.core.errors import Cancelled, ConfigError
from tlgui.core.events import BatchProgress, EpochEnded, StageProgress
from tlgui.gui.workers import Job, running_jobs, stop_all


def _job(fn) -> Job:  # type: ignore[no-untyped-def]
    return Job("test", fn)


def test_success_order_and_result(qtbot) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, object] = {}

    def work(report, cancel):  # type: ignore[no-untyped-def]
        seen["thread"] = threading.current_thread()
        report(StageProgress("scan", 1, 1, "one"))
        return 42

    job = _job(work)
    results: list[object] = []
    job.succeeded.connect(results.append)
    with qtbot.waitSignals([job.progress, job.succeeded, job.finished], order="strict",
                           timeout=10_000):
        job.start()
    assert results == [42]
    assert seen["thread"] is not threading.main_thread()
    assert job.wait(10_000)
    assert not job.is_running() and job not in running_jobs()


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "cancelled"])
def test_the_outcome_and_finished_arrive_in_one_turn(qtbot, outcome: str) -> None:  # type: ignore[no-untyped-def]
    # The worker thread stalls between its outcome and its "finished" (a busy machine
    # deschedules it): the GUI still never runs a turn in which the job has an outcome
    # but has not finished (the CI failure of a Train button disabled beside "failed").
    def work(report, cancel):  # type: ignore[no-untyped-def]
        if outcome == "failed":
            raise ConfigError("no")
        if outcome == "cancelled":
            raise Cancelled()
        return 1

    job = _job(work)
    stall = lambda *_a: time.sleep(0.3)  # noqa: E731
    getattr(job.worker, outcome).connect(stall, Qt.ConnectionType.DirectConnection)
    finished_at_next_turn: list[bool] = []
    ended = {"finished": False}
    job.finished.connect(lambda: ended.update(finished=True))

    def on_outcome(*_a: object) -> None:
        QTimer.singleShot(0, lambda: finished_at_next_turn.append(ended["finished"]))

    getattr(job, outcome).connect(on_outcome)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start()
    qtbot.waitUntil(lambda: bool(finished_at_next_turn), timeout=5000)
    assert finished_at_next_turn == [True]
    assert job.wait(10_000)


def test_failure_is_reported_with_the_error_and_logged(qtbot, caplog) -> None:  # type: ignore[no-untyped-def]
    def work(report, cancel):  # type: ignore[no-untyped-def]
        raise ConfigError("The learning rate must be above 0 (got 0).")

    job = _job(work)
    errors: list[object] = []
    job.failed.connect(errors.append)
    with qtbot.waitSignals([job.failed, job.finished], order="strict", timeout=10_000):
        job.start()
    error = errors[0]
    assert isinstance(error, ConfigError) and "learning rate" in str(error)
    job.wait()

    def crash(report, cancel):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("boom")

    job = _job(crash)
    with caplog.at_level(logging.ERROR, logger="tlgui"), qtbot.waitSignals(
            [job.failed, job.finished], order="strict", timeout=10_000):
        job.start()
    job.wait()
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records), \
        "the traceback goes to the log"


def test_cancel_sets_the_event_and_ends_with_cancelled(qtbot) -> None:  # type: ignore[no-untyped-def]
    from tlgui.core.errors import Cancelled

    started = threading.Event()

    def work(report, cancel):  # type: ignore[no-untyped-def]
        started.set()
        while not cancel.wait(0.01):
            pass
        raise Cancelled()

    job = _job(work).start()
    assert started.wait(10)
    with qtbot.waitSignals([job.cancelled, job.finished], order="strict",
                           timeout=10_000):
        job.cancel()
    assert job.wait(10_000)
    assert not job.qthread.isRunning()


def test_progress_is_throttled_but_epoch_events_are_kept_in_order(qtbot) -> None:  # type: ignore[no-untyped-def]
    def work(report, cancel):  # type: ignore[no-untyped-def]
        for i in range(5000):
            report(BatchProgress(1, 1, i + 1, 5000, 1.0, 0.5))
        report(EpochEnded(1, 1, 0.5, 0.5, 0.5, 0.5, 1.0))
        time.sleep(0.05)
        return None

    job = _job(work)
    received: list[object] = []
    job.progress.connect(received.append)
    with qtbot.waitSignal(job.finished, timeout=20_000):
        job.start()
    job.wait()
    batches = [e for e in received if isinstance(e, BatchProgress)]
    assert 1 <= len(batches) < 60, f"{len(batches)} progress signals for 5000 batches"
    assert isinstance(received[-1], EpochEnded)
    # The newest batch state is shown before the epoch ends, never a stale one after it.
    assert batches[-1].batch == 5000


def test_stop_all_joins_every_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    def work(report, cancel):  # type: ignore[no-untyped-def]
        cancel.wait(30)
        return "stopped"

    jobs = [_job(work).start() for _ in range(3)]
    assert all(j.qthread.isRunning() or j.is_running() for j in jobs)
    assert stop_all(10_000)
    assert not running_jobs()
    assert all(not j.qthread.isRunning() for j in jobs)
    assert all(isinstance(j.qthread, QThread) for j in jobs)


@pytest.mark.parametrize("count", [1, 20])
def test_many_short_jobs_leave_no_thread(qtbot, count: int) -> None:  # type: ignore[no-untyped-def]
    jobs = [_job(lambda report, cancel: 1).start() for _ in range(count)]
    for j in jobs:
        assert j.wait(10_000)
    assert not running_jobs()
