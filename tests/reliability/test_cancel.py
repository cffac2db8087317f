"""Cancel at chosen points of scan, cache build, features, each phase and export.

Each case sets the cancel event from the ``report`` callback at an event picked by a
seeded random choice among the events that stage always reports. The run must stop
within one batch and leave a consistent state: the status says cancelled, the history
on disk matches, the last good checkpoint loads, an earlier export is untouched.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tests.reliability.helpers import TINY, temp_litter
from tlgui.core.config import PhaseConfig
from tlgui.core.dataset import Dataset, scan
from tlgui.core.errors import Cancelled
from tlgui.core.events import BatchProgress, EpochEnded, Event, StageProgress
from tlgui.core.export import export_model
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import load_keras
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.runs import read_run
from tlgui.core.training import run_training

Trigger = Callable[[Event], bool]
CFG = TINY.replace(phase1=PhaseConfig(epochs=2), phase2=PhaseConfig(epochs=2),
                   fine_tune_at=150)
# Only what a stage needs runs: phase 2 is cancelled after a single phase-1 epoch.
STAGE_CFG = {"decode": CFG, "features": CFG,
             "phase1": CFG.replace(phase2=PhaseConfig(epochs=0)),
             "phase2": CFG.replace(phase1=PhaseConfig(epochs=1))}


def _stage(name: str, last: bool) -> Trigger:
    def hit(e: Event) -> bool:
        return isinstance(e, StageProgress) and e.stage == name and \
            (e.done == e.total if last else e.done < e.total or e.total == 0)
    return hit


def _batch(phase: int) -> Trigger:
    return lambda e: isinstance(e, BatchProgress) and e.phase == phase


def _epoch_end(phase: int) -> Trigger:
    return lambda e: isinstance(e, EpochEnded) and e.phase == phase


# The events each stage always reports (progress is throttled, so only these are sure).
CANDIDATES: dict[str, list[Trigger]] = {
    "scan": [_stage("scan", last=False)],
    "decode": [_stage("decode", last=False), _stage("decode", last=True)],
    "features": [_stage("features", last=False), _stage("features", last=True)],
    "phase1": [_batch(1), _epoch_end(1)],
    "phase2": [_batch(2), _epoch_end(2)],
    "export": [_stage("export", last=False)],
}


class Canceller:
    """A report callback that sets ``cancel`` at the chosen event and logs what follows."""

    def __init__(self, stage: str, seed: int = 2024) -> None:
        self.trigger = random.Random(f"{seed}:{stage}").choice(CANDIDATES[stage])
        self.cancel = threading.Event()
        self.after: list[Event] = []

    def __call__(self, e: Event) -> None:
        if self.cancel.is_set():
            self.after.append(e)
        elif self.trigger(e):
            self.cancel.set()


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return scan(make_dataset(tmp_path_factory.mktemp("cancel") / "data", per_class=6))


@pytest.fixture(scope="module")
def model(ds: Dataset) -> ClassifierModel:
    """One tiny model for every case here: a build costs seconds on two cores."""
    cm = ClassifierModel.build(CFG, ds.class_names)
    cm.compile(CFG.phase1)
    return cm


def test_cancel_during_scan(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", per_class=6)
    c = Canceller("scan")
    with pytest.raises(Cancelled, match="Scan cancelled"):
        scan(root, report=c, cancel=c.cancel)
    assert c.cancel.is_set() and not c.after


@pytest.mark.parametrize("stage", ["decode", "features", "phase1", "phase2"])
def test_cancel_during_training(stage: str, ds: Dataset, model: ClassifierModel,
                                tmp_path: Path) -> None:
    c = Canceller(stage)
    result = run_training(ds, STAGE_CFG[stage], report=c, cancel=c.cancel, model=model,
                          cache=PixelCache(tmp_path / "cache"), run_root=tmp_path / "runs")
    assert c.cancel.is_set() and result.cancelled
    # Within one batch: no batch, epoch, decode or feature progress after the cancel.
    moving = [e for e in c.after if isinstance(e, (BatchProgress, EpochEnded))
              or (isinstance(e, StageProgress) and e.stage in ("decode", "features"))]
    assert not moving, moving
    assert result.run is not None
    run = result.run.path
    assert read_run(run).state == "cancelled"
    on_disk = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in on_disk] == [h["epoch"] for h in result.history]
    finished = {"decode": 0, "features": 0, "phase1": {0, 1}, "phase2": {1, 2}}[stage]
    n = len(result.history)
    assert n in finished if isinstance(finished, set) else n == finished
    if n:  # the last good checkpoint is on disk and loads
        _m, names, meta = load_keras(run / "model.keras")
        assert names == ds.class_names
        assert meta["epoch"] in {h["epoch"] for h in result.history}
    else:
        assert not (run / "model.keras").exists()
    assert not temp_litter(run)
    probs = np.asarray(result.model.model(np.zeros((2, 40, 40, 3), np.uint8)))
    assert probs.shape == (2, 3) and np.isfinite(probs).all()


def test_cancelled_export_keeps_the_earlier_export(model: ClassifierModel,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "exports" / "flowers.keras"
    export_model(model.model, model.class_names, 32, "keras", out)
    before = out.read_bytes()
    c = Canceller("export")
    with pytest.raises(Cancelled, match="nothing was written"):
        export_model(model.model, model.class_names, 32, "keras", out, report=c,
                     cancel=c.cancel, overwrite=True)
    assert c.cancel.is_set()
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["flowers.keras"]
