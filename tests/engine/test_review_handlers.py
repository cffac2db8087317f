"""The engine's review operations in process: corrections in dataset refs, the audit's
data on the pipe, its cancel, nearest images and heat maps as data."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tlgui.core.audit_findings import AuditSummary, Finding, Nearest
from tlgui.core.config import SplitConfig, TrainConfig
from tlgui.core.corrections import Corrections
from tlgui.core.dataset import Problem
from tlgui.core.errors import Cancelled
from tlgui.core.events import Event, StageProgress
from tlgui.core.heatmap import HeatMap
from tlgui.engine import codec
from tlgui.engine.handlers import Handlers

TINY = TrainConfig(weights="none", image_size=32)


def _ignore(_event: Event) -> None:
    pass


@pytest.fixture
def scanned(tmp_path: Path) -> tuple[Handlers, dict, Path]:  # type: ignore[type-arg]
    root = make_dataset(tmp_path / "photos", per_class=6)
    h = Handlers()
    data = h.scan({"root": str(root)}, _ignore, threading.Event())
    ds, token = codec.dataset_from_data(data)
    return h, codec.dataset_ref(ds, token, SplitConfig()), root


def test_a_dataset_ref_carries_the_corrections_the_engine_applies(scanned) -> None:  # type: ignore[no-untyped-def]
    h, ref, root = scanned
    plain = h.dataset(ref, _ignore, threading.Event())
    c = Corrections(root.absolute())
    c.relabel(root / "red" / "img_000.jpg", "blue")
    c.exclude(root / "green" / "img_001.jpg")
    ds, token = codec.dataset_from_data(codec.dataset_to_data(plain, ref["token"]))
    with_list = codec.dataset_ref(ds, token, SplitConfig(), c.to_dict())
    fixed = h.dataset(json.loads(json.dumps(with_list)), _ignore, threading.Event())
    assert plain.counts("all") == {"blue": 6, "green": 6, "red": 6}
    assert fixed.counts("all") == {"blue": 7, "green": 5, "red": 5}
    # The kept scan is not changed by applying the list.
    assert h.dataset(ref, _ignore, threading.Event()).counts("all") == plain.counts("all")
    assert "corrections" not in codec.dataset_ref(ds, token, SplitConfig(), None)


def test_an_audit_summary_and_heat_maps_cross_the_pipe_as_data() -> None:
    f = Finding(Path("/d/a/x.jpg"), "near_duplicate", "a", "b", 0.98, Path("/d/b/y.jpg"),
                "label_conflict", "same photo", 0, 1)
    summary = AuditSummary(
        Path("/d"), ("a", "b"), (Path("/d/a/x.jpg"), Path("/d/b/y.jpg")), (0, 1),
        np.array([[0.25, 0.75], [0.5, 0.5]], np.float32), (f,),
        ((Nearest("a", (), ()), Nearest("b", (Path("/d/b/y.jpg"),), (0.9,))),),
        (Problem(Path("/d/a/bad.jpg"), "not an image"),), 0.5, "MobileNetV2", 224,
        {"features": 1.0})
    back = codec.audit_summary_from_data(json.loads(json.dumps(
        codec.audit_summary_to_data(summary))))
    assert back.findings == summary.findings and back.nearest == summary.nearest
    assert back.problems == summary.problems and back.paths == summary.paths
    np.testing.assert_allclose(back.probabilities, summary.probabilities)
    assert back.top_classes(0) == (("b", 0.75), ("a", 0.25))
    bad = codec.audit_summary_to_data(summary)
    bad["findings"][0][1] = "os.system"
    with pytest.raises(ValueError, match="unknown audit problem"):
        codec.audit_summary_from_data(bad)

    heat = HeatMap(Path("/d/a/x.jpg"), np.array([[0.0, 0.5], [1.0, 0.25]], np.float32), "a",
                   0.8)
    again = codec.heatmap_from_data(json.loads(json.dumps(codec.heatmap_to_data(heat))))
    np.testing.assert_allclose(again.grid, heat.grid)
    assert (again.path, again.class_name, again.error) == (heat.path, "a", None)
    with pytest.raises(ValueError, match="2-D"):
        codec.heatmap_from_data({"path": "x", "grid": [1.0, 2.0]})


def test_the_audit_stops_within_one_batch_and_nearest_images_follow_labels(scanned) -> None:  # type: ignore[no-untyped-def]
    h, ref, root = scanned
    cancel = threading.Event()
    seen: list[str] = []

    def report(event: Event) -> None:
        if isinstance(event, StageProgress):
            seen.append(event.stage)
            if event.stage == "features":
                cancel.set()

    params = {"dataset": ref, "config": TINY.to_dict(), "image_size": 32}
    with pytest.raises(Cancelled):
        h.review.audit(params, report, cancel)
    assert "features" in seen and "audit" not in seen

    # Nearest images: a relabelled image counts for its new class at once.
    query = root / "red" / "img_000.jpg"
    moved = root / "green" / "img_002.jpg"
    c = Corrections(root.absolute())
    c.relabel(moved, "red")
    ask = {"dataset": {**ref, "corrections": c.to_dict()}, "config": TINY.to_dict(),
           "image_size": 32, "queries": [[str(query), ["red", "green"]]], "k": 20}
    (red, green), = codec.nearest_from_data(h.review.neighbours(ask, _ignore,
                                                                threading.Event()))
    assert (red.class_name, green.class_name) == ("red", "green")
    assert moved in red.paths and moved not in green.paths and query not in red.paths
    assert len(red.paths) == 6 and len(green.paths) == 5
