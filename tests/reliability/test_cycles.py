"""Twelve train-and-cancel cycles through the GUI's worker: no leaked threads or memory.

Each cycle starts a training ``Job`` (a worker in a QThread, as the window does) and
cancels it from the GUI thread when a progress event chosen by a seeded random draw
arrives. After warm-up cycles, the Python thread count must not grow, the native one's
floor must not rise, and the resident memory must grow less than 15%.
"""

from __future__ import annotations

import gc
import random
import threading
from pathlib import Path
from typing import Any

import psutil

from tests.imagegen import make_dataset
from tests.reliability.helpers import TINY
from tlgui.core.config import PhaseConfig
from tlgui.core.dataset import scan
from tlgui.core.events import BatchProgress, EpochEnded, StageProgress
from tlgui.core.model import ClassifierModel
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.training import TrainResult, run_training
from tlgui.gui.workers import Job, running_jobs

CYCLES = 12
WARM_UP = 3
# Epochs to spare: the cancel travels through the GUI thread and lands a little later.
CFG = TINY.replace(phase1=PhaseConfig(epochs=6), phase2=PhaseConfig(epochs=0))
POINTS = {
    "decode": lambda e: isinstance(e, StageProgress) and e.stage == "decode",
    "features": lambda e: isinstance(e, StageProgress) and e.stage == "features",
    "batch": lambda e: isinstance(e, BatchProgress),
    "epoch": lambda e: isinstance(e, EpochEnded),
}


def _python_threads() -> list[threading.Thread]:
    # A QThread that ran Python code stays listed as a "Dummy" thread after it ends
    # (Python cannot see foreign threads end); the OS thread count below is the truth.
    return [t for t in threading.enumerate()
            if t.is_alive() and type(t).__name__ != "_DummyThread"]


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def test_train_and_cancel_cycles(qtbot: Any, tmp_path: Path) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=6))
    # One model for the session, as the window keeps one; the cache is the user's.
    cm = ClassifierModel.build(CFG, ds.class_names)
    cm.compile(CFG.phase1)
    cache = PixelCache(tmp_path / "cache")
    rng = random.Random(20)
    points = [rng.choice(list(POINTS)) for _ in range(CYCLES)]
    threads: list[int] = []
    native: list[int] = []
    rss: list[int] = []
    outcomes: list[str] = []
    for point in points:
        def work(report: Any, cancel: threading.Event) -> TrainResult:
            return run_training(ds, CFG, report, cancel, model=cm, cache=cache,
                                run_root=tmp_path / "runs")

        job = Job("train", work)
        hit = POINTS[point]
        results: list[TrainResult] = []

        def on_progress(e: object, job: Job = job, hit: Any = hit) -> None:
            if hit(e):
                job.cancel()

        job.progress.connect(on_progress)
        job.succeeded.connect(results.append)
        with qtbot.waitSignal(job.finished, timeout=120_000):
            job.start()
        assert job.wait(30_000)
        outcomes.append("cancelled" if results and results[0].cancelled else "finished")
        del job, results, work, on_progress
        threads.append(len(_python_threads()))
        native.append(psutil.Process().num_threads())
        rss.append(_rss())
    print(f"cancel points: {points}")
    print(f"python threads: {threads}\nnative threads: {native}")
    print("rss MB: " + " ".join(f"{r / 2**20:.0f}" for r in rss))
    assert outcomes == ["cancelled"] * CYCLES
    assert not running_jobs()
    assert max(threads[WARM_UP:]) <= threads[WARM_UP - 1]
    # TensorFlow's pools start and retire threads as work comes: a count taken after a
    # cycle swings by 8 or more (29 to 37 on a 2-core machine), so peaks say nothing. A
    # leak raises the floor instead: one thread a cycle would put the second half's lowest
    # count 6 above the first half's.
    half = CYCLES // 2
    assert min(native[half:]) <= min(native[:half]) + 3
    growth = (rss[-1] - rss[WARM_UP - 1]) / rss[WARM_UP - 1]
    print(f"memory growth after warm-up: {growth:.1%}")
    assert growth < 0.15
