"""The engine keeps mirror averaging where the window asked for it: a new engine (after a
crash) loads the Predict tab's model again the same way, for predictions and heat maps."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.imagegen import make_dataset
from tests.tiny_models import save_random_classifier
from tlgui.core.config import TrainConfig
from tlgui.core.events import Event
from tlgui.engine.handlers import Handlers

TINY = TrainConfig(weights="none", image_size=32)


def _ignore(_event: Event) -> None:
    pass


@pytest.mark.parametrize("mirror", [False, True])
def test_a_new_engine_loads_the_model_as_the_window_did(tmp_path: Path, mirror: bool) -> None:
    model = save_random_classifier(tmp_path / "m.keras", ("blue", "green", "red"), TINY,
                                   head_std=0.05)
    images = make_dataset(tmp_path / "photos", per_class=2)
    first = Handlers()
    info = first.load_predictor({"path": str(model), "mirror": mirror}, _ignore,
                                threading.Event())
    assert info["mirror"] is mirror
    want = first.predict({"id": info["id"], "path": str(model), "mirror": mirror,
                          "paths": [str(images)]}, _ignore, threading.Event())
    fresh = Handlers()  # the engine was replaced: it has no predictor of that id
    got = fresh.predict({"id": info["id"], "path": str(model), "mirror": mirror,
                         "paths": [str(images)]}, _ignore, threading.Event())
    assert fresh.predictors[info["id"]].mirror is mirror
    assert got == want
