"""Two-phase training: events, history, run folder, cancel, both augmentation paths."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tlgui.core.config import AugmentConfig, PhaseConfig, TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.errors import RecompileRequired
from tlgui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    Notice,
    PhaseEnded,
    PhaseStarted,
)
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import load_keras
from tlgui.core.runs import list_runs
from tlgui.core.training import run_training

TINY = TrainConfig(weights="none", image_size=32, batch_size=8,
                   phase1=PhaseConfig(epochs=2, learning_rate=1e-2),
                   phase2=PhaseConfig(epochs=2, learning_rate=1e-3),
                   fine_tune_at=130)


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory: pytest.TempPathFactory):
    return scan(make_dataset(tmp_path_factory.mktemp("d") / "data", per_class=10))


def test_two_phases_one_history_and_a_run_folder(small_ds, isolated_dirs: Path) -> None:
    events: list[Event] = []
    result = run_training(small_ds, TINY, report=events.append, run_root=isolated_dirs / "runs")
    kinds = [type(e) for e in events]
    assert kinds.count(PhaseStarted) == 2 and kinds.count(PhaseEnded) == 2
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [(e.phase, e.epoch) for e in epochs] == [(1, 1), (1, 2), (2, 3), (2, 4)]
    assert any(isinstance(e, BatchProgress) for e in events)
    starts = [e for e in events if isinstance(e, PhaseStarted)]
    assert starts[1].first_epoch == 3 and starts[1].trainable_params > starts[0].trainable_params
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    run = result.run.path
    assert {"config.json", "classes.json", "status.json", "history.json", "history.csv",
            "model.keras"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "status.json").read_text())["state"] == "complete"
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [r["phase"] for r in rows] == ["1", "1", "2", "2"]
    _model, names, meta = load_keras(run / "model.keras")
    assert names == ("blue", "green", "red") and meta["image_size"] == 32
    assert not list(run.glob(".tlgui-tmp-*"))
    listed = list_runs(isolated_dirs / "runs")
    assert listed[0].path == run and listed[0].state == "complete"


def test_cancel_mid_epoch_stops_within_a_batch(small_ds, isolated_dirs: Path) -> None:
    cancel = threading.Event()
    batches_after_cancel: list[BatchProgress] = []

    def report(e: Event) -> None:
        if isinstance(e, BatchProgress) and e.phase == 2:
            if cancel.is_set():
                batches_after_cancel.append(e)
            cancel.set()

    cfg = TINY.replace(batch_size=4, phase2=PhaseConfig(epochs=5, learning_rate=1e-3))
    result = run_training(small_ds, cfg, report=report, cancel=cancel,
                          run_root=isolated_dirs / "runs")
    assert result.cancelled
    assert not batches_after_cancel
    assert [h["phase"] for h in result.history] == [1, 1]  # no phase-2 epoch finished
    status = json.loads((result.run.path / "status.json").read_text())
    assert status["state"] == "cancelled"
    # The best finished epoch's weights are still a working model on disk.
    model, _, _ = load_keras(result.run.path / "model.keras")
    assert model(np.zeros((1, 50, 50, 3), np.uint8)).shape == (1, 3)


def test_per_epoch_augmentation_path_and_skipped_phase(small_ds) -> None:
    cfg = TINY.replace(augment=AugmentConfig(mode="per_epoch"), phase1=PhaseConfig(epochs=0))
    result = run_training(small_ds, cfg, write_run=False)
    assert [h["phase"] for h in result.history] == [2, 2]
    assert result.history[0]["epoch"] == 1


def test_model_with_unrecompiled_edits_is_refused(small_ds) -> None:
    cm = ClassifierModel.build(TINY, small_ds.class_names)
    cm.compile(TINY.phase1)
    cm.set_fine_tune_at(140)
    with pytest.raises(RecompileRequired):
        run_training(small_ds, TINY, model=cm, use_model_trainable=True, write_run=False)
    cm.compile(TINY.phase1)
    result = run_training(small_ds, TINY, model=cm, use_model_trainable=True, write_run=False)
    flags = dict(cm.trainable_flags())
    layers = cm.backbone.layers
    assert flags[("backbone", layers[139].name)] is False
    assert flags[("backbone", layers[141].name)] is True
    assert len(result.history) == 4


@pytest.mark.real_weights
def test_cached_features_match_the_full_model(small_ds, real_weights_dir: Path) -> None:
    """Reported validation accuracy equals what the whole model scores on those images."""
    from tlgui.core.pixel_cache import PixelCache, load_pixels

    cfg = TINY.replace(weights="imagenet", weights_dir=str(real_weights_dir), image_size=96,
                       phase1=PhaseConfig(epochs=8, learning_rate=1e-3),
                       phase2=PhaseConfig(epochs=1, learning_rate=1e-4), fine_tune_at=None)
    result = run_training(small_ds, cfg, write_run=False)
    assert result.phase_accuracy[1] > 0.8  # real features separate the colours
    x, kept, _ = load_pixels(small_ds.validation, 96, PixelCache())
    probs = np.asarray(result.model.model.predict(x, verbose=0))
    y = np.array([small_ds.validation[i].label for i in kept])
    acc = float((probs.argmax(1) == y).mean())
    last = result.history[-1]["val_accuracy"]
    best2 = result.phase_accuracy[2]
    assert acc == pytest.approx(best2, abs=1e-6) or acc == pytest.approx(last, abs=1e-6)


@pytest.mark.real_weights
def test_same_seed_same_history(small_ds, real_weights_dir: Path) -> None:
    cfg = TINY.replace(weights="imagenet", weights_dir=str(real_weights_dir), image_size=96,
                       phase1=PhaseConfig(epochs=2), phase2=PhaseConfig(epochs=1),
                       fine_tune_at=None)
    a = run_training(small_ds, cfg, write_run=False)
    b = run_training(small_ds, cfg, write_run=False)
    c = run_training(small_ds, cfg.replace(seed=7, phase2=PhaseConfig(epochs=0)),
                     write_run=False)
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    for ha, hb in zip(a.history, b.history, strict=True):
        for k in keys:
            assert ha[k] == pytest.approx(hb[k], rel=1e-5, abs=1e-6), k
    assert a.history[0]["loss"] != c.history[0]["loss"]  # the seed matters


def test_disk_full_while_saving_the_checkpoint_is_a_clear_error(
        small_ds, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import tlgui.core.training as training

    real_save = training.save_keras
    calls = {"n": 0}

    def failing_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(training, "save_keras", failing_save)
    # This tiny model may never beat its phase-1 score; without the baseline the first
    # phase-2 epoch is a new best, so a second checkpoint is surely saved.
    monkeypatch.setattr(training.PhaseMonitor, "start_from", lambda *a: None)
    cfg = TINY.replace(phase1=PhaseConfig(epochs=2, learning_rate=1e-2, optimizer="sgd"))
    with pytest.raises(training.TlguiError, match=r"Cannot save the checkpoint.*No space"):
        run_training(small_ds, cfg, run_root=isolated_dirs / "runs")
    run = next((isolated_dirs / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    load_keras(run / "model.keras")  # the first checkpoint is intact


def test_phase1_runs_the_backbone_once_and_phase2_adds_the_mirror(
        small_ds, monkeypatch: pytest.MonkeyPatch) -> None:
    """Phase 1 needs one pass over the images; the mirror waits for phase 2's first epoch."""
    from tlgui.core import frozen_features as ff

    calls: list[tuple[int, tuple[int, ...], bool]] = []
    real = ff.extract
    drawn: dict[int, set[int]] = {}
    real_getitem = ff.ViewBatches.__getitem__

    def spy(cm, images, views, cut, batch_size, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((images.n, tuple(views), kwargs.get("pooled", True)))
        return real(cm, images, views, cut, batch_size, *args, **kwargs)

    def getitem(self, i):  # type: ignore[no-untyped-def]
        if self.shuffle and self.feats.ndim > 3:  # phase 2 training batches
            drawn.setdefault(self.epoch, set()).update(self.views_of_epoch().tolist())
        return real_getitem(self, i)

    monkeypatch.setattr(ff, "extract", spy)
    monkeypatch.setattr(ff.ViewBatches, "__getitem__", getitem)
    events: list[Event] = []
    cfg = TINY.replace(phase2=PhaseConfig(epochs=3, learning_rate=1e-3))
    result = run_training(small_ds, cfg, report=events.append, write_run=False)
    n_train, n_val = len(small_ds.train), len(small_ds.validation)
    assert calls == [(n_train, (0,), True), (n_val, (0,), True), (n_train, (1,), False)]
    # The mirror pass runs between the first and the second phase-2 epoch...
    marks = [f"epoch {e.epoch}" if isinstance(e, EpochEnded) else "mirror" for e in events
             if isinstance(e, EpochEnded) or
             (type(e).__name__ == "StageProgress" and "mirrored" in e.message)]
    assert marks.index("mirror") > marks.index("epoch 3")
    assert marks.index("mirror") < marks.index("epoch 4")
    # ...and only the epochs after it show mirrored images. (Keras reads two batches to
    # learn their shapes and then starts a new epoch, so the training epochs are 1 to 3.)
    assert sorted(drawn) == [0, 1, 2, 3]
    assert drawn[1] == {0} and drawn[2] == {0, 1} and drawn[3] == {0, 1}
    assert len(result.history) == 5

    calls.clear()
    run_training(small_ds, TINY.replace(phase2=PhaseConfig(epochs=0)), write_run=False)
    assert [c[1] for c in calls] == [(0,), (0,)]  # no phase 2: no mirror pass at all


def test_fine_tuning_that_only_hurts_keeps_the_phase1_weights(small_ds) -> None:
    cfg = TINY.replace(phase2=PhaseConfig(epochs=2, learning_rate=50.0, optimizer="sgd",
                                          early_stopping_patience=None))
    events: list[Event] = []
    result = run_training(small_ds, cfg, report=events.append, write_run=False)
    p1 = [h for h in result.history if h["phase"] == 1]
    p2 = [h for h in result.history if h["phase"] == 2]
    best1 = max(p1, key=lambda h: (h["val_accuracy"], -h["val_loss"]))
    assert all((h["val_accuracy"], -h["val_loss"]) < (best1["val_accuracy"], -best1["val_loss"])
               for h in p2)
    ended = [e for e in events if isinstance(e, PhaseEnded)]
    assert ended[1].best_epoch == best1["epoch"]
    assert result.phase_accuracy[2] == pytest.approx(best1["val_accuracy"])
    assert any("keeps the weights of phase 1" in getattr(e, "message", "") for e in events)
    # The model holds phase 1's weights: it scores phase 1's best loss again.
    from tlgui.core.pixel_cache import PixelCache, load_pixels
    x, kept, _ = load_pixels(small_ds.validation, 32, PixelCache())
    probs = np.asarray(result.model.model.predict(x, verbose=0))
    y = np.array([small_ds.validation[i].label for i in kept])
    assert float((probs.argmax(1) == y).mean()) == pytest.approx(best1["val_accuracy"])


def test_features_spilled_to_disk_train_the_same_model(
        small_ds, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the memory budget the features live in a file; the run is the same."""
    from tlgui.core import spill

    made: list[spill.DiskArray] = []
    real_init = spill.DiskArray.__init__

    def record(self: spill.DiskArray, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    cfg = TINY.replace(augment=AugmentConfig(views=2))
    in_memory = run_training(small_ds, cfg, write_run=False)
    assert not made
    monkeypatch.setattr(spill.DiskArray, "__init__", record)
    monkeypatch.setenv(spill.BUDGET_ENV, "0")
    events: list[Event] = []
    spilled = run_training(small_ds, cfg, write_run=False, report=events.append)
    assert made  # the pooled features and the cut tensors went to files
    assert any(isinstance(e, Notice) and "kept on disk" in e.message for e in events)
    assert {len(a.full_shape) for a in made} >= {3, 5}
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert len(spilled.history) == len(in_memory.history) == 4
    for a, b in zip(in_memory.history, spilled.history, strict=True):
        for k in keys:
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k
    # The run's files are gone with it.
    assert not list((isolated_dirs / "cache" / "spill").rglob("*.bin"))


def test_the_run_keeps_the_size_it_trained_at(small_ds, isolated_dirs: Path) -> None:
    # The window leaves the size to the backbone's default (ADR 013 changed that default
    # once): the run folder records the size itself, so the catalog never guesses.
    open_size = TINY.replace(image_size=None, phase2=PhaseConfig(epochs=0))
    cm = ClassifierModel.build(TINY, small_ds.class_names)
    cm.compile(TINY.phase1)
    result = run_training(small_ds, open_size, model=cm, run_root=isolated_dirs / "runs")
    config = json.loads((result.run.path / "config.json").read_text())
    assert config["image_size"] == 32


def test_a_small_set_gets_enough_head_steps() -> None:
    import numpy as np

    from tlgui.core.frozen_features import ViewBatches
    from tlgui.core.phase_fit import MIN_HEAD_STEPS, head_passes

    # 10 photos of 5 classes: an epoch of 2 batches would be 2 steps; it goes 10 times
    # over the photos instead, each time in a new order.
    assert head_passes(50, 32) == 10 and head_passes(2568, 32) == 1
    assert head_passes(125, 32) == 5 and head_passes(1, 32) == MIN_HEAD_STEPS
    feats = np.arange(50, dtype=np.float32).reshape(1, 50, 1)
    labels = np.arange(50) % 5
    batches = ViewBatches(feats, labels, 5, None, 32, True, seed=0, passes=10)
    assert len(batches) >= MIN_HEAD_STEPS - 4
    seen = np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])
    assert sorted(seen.tolist()) == sorted(list(range(50)) * 10)  # every photo, 10 times
    assert not np.array_equal(seen[:50], seen[50:100])  # a new order each pass
    one = ViewBatches(feats, labels, 5, None, 32, True, seed=0)
    assert len(one) == 2


def test_a_cosine_schedule_sets_each_epochs_rate_in_the_optimizer() -> None:
    import keras

    from tlgui.core.phase_monitor import PhaseMonitor

    phase = PhaseConfig(epochs=4, learning_rate=1e-2, early_stopping_patience=None,
                        schedule="cosine")
    assert [round(phase.rate(e) / 1e-2, 3) for e in range(4)] == [1.0, 0.854, 0.5, 0.146]
    assert PhaseConfig(epochs=4, learning_rate=1e-2).rate(3) == 1e-2  # constant: as before
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(phase.learning_rate),
                  loss="categorical_crossentropy")
    seen: list[float] = []

    class Spy(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_begin(self, batch: int, logs: object = None) -> None:
            if batch == 0:
                seen.append(float(keras.ops.convert_to_numpy(
                    self.model.optimizer.learning_rate)))

    x, y = np.ones((8, 3), np.float32), np.eye(2, dtype=np.float32)[[0, 1] * 4]
    expected = [phase.rate(e) for e in range(4)]
    # Twice on the same optimizer, as an out-of-memory retry of the phase does: the
    # second fit must start again from the first epoch's rate.
    for _attempt in range(2):
        seen.clear()
        history: list[dict[str, object]] = []
        monitor = PhaseMonitor(model, 2, 1, phase.epochs, None, lambda _e: None,
                               threading.Event(), history, lambda _e: None, phase.rate)
        model.fit(x, y, validation_data=(x, y), epochs=4, batch_size=4, verbose=0,
                  callbacks=[monitor, Spy()])
        np.testing.assert_allclose(seen, expected, rtol=1e-6)  # what the optimizer used
        np.testing.assert_allclose([h["learning_rate"] for h in history], expected,
                                   rtol=1e-6)


def test_training_follows_the_phase_schedule(small_ds) -> None:
    cfg = TINY.replace(phase2=PhaseConfig(epochs=3, learning_rate=1e-3,
                                          early_stopping_patience=None, schedule="cosine"))
    result = run_training(small_ds, cfg, write_run=False)
    rates = [h["learning_rate"] for h in result.history]
    np.testing.assert_allclose(rates, [1e-2, 1e-2, 1e-3, 7.5e-4, 2.5e-4], rtol=1e-6)


def test_an_unknown_schedule_is_refused_before_training(small_ds) -> None:
    from tlgui.core.errors import ConfigError

    with pytest.raises(ConfigError, match="schedule 'linear' is unknown"):
        run_training(small_ds, TINY.replace(phase2=PhaseConfig(schedule="linear")),  # type: ignore[arg-type]
                     write_run=False)
