"""The wire format and the data codecs between window and engine (no process needed)."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from tlgui.core import events
from tlgui.core.config import TrainConfig
from tlgui.core.dataset import Dataset, Problem, Sample
from tlgui.core.errors import DatasetError, RecompileRequired, TlguiError
from tlgui.core.layer_tree import Block, LayerNode, from_dict, link, own_flags, to_dict
from tlgui.core.metrics import evaluation_from_data, evaluation_to_data, summarize
from tlgui.core.outcomes import ModelInfo, TrainSummary
from tlgui.core.prediction import Prediction
from tlgui.engine import codec
from tlgui.engine.protocol import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
    read_message,
)

# A file name that is not valid UTF-8, as Linux hands it to Python (surrogate escapes).
ODD = os.fsdecode(b"caf\xe9-\xff.jpg")


def test_messages_are_ascii_lines_with_a_version() -> None:
    line = encode({"type": "call", "id": 3, "params": {"path": ODD, "x": math.nan}})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("ascii")  # no raw bytes of any name cross the pipe
    back = decode(line)
    assert back["v"] == PROTOCOL_VERSION and back["params"]["path"] == ODD
    assert math.isnan(back["params"]["x"])


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'{"v": 1}\n',
                                  b'{"v": 99, "type": "call"}\n'])
def test_bad_lines_are_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(line)


def test_read_message_ends_cleanly_and_bounds_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.BytesIO(encode({"type": "hello"}) + encode({"type": "ready"}))
    assert read_message(stream)["type"] == "hello"  # type: ignore[index]
    assert read_message(stream)["type"] == "ready"  # type: ignore[index]
    assert read_message(stream) is None
    monkeypatch.setattr("tlgui.engine.protocol.MAX_LINE_BYTES", 64)
    with pytest.raises(ProtocolError, match="too long"):
        read_message(io.BytesIO(b'{"v": 1, "type": "' + b"x" * 100 + b'"}\n'))
    assert MAX_LINE_BYTES > 100 * 2**20, "a scan of 100,000 files fits in one message"


def test_every_event_kind_survives_the_trip() -> None:
    samples = [
        events.StageProgress("scan", 3, 10, "Scanning"),
        events.PhaseStarted(2, 10, 11, 1e-4, 123),
        events.BatchProgress(1, 2, 3, 4, 5.5, 0.7),
        events.EpochEnded(1, 2, 0.5, 0.8, 0.6, math.nan, 1.25),
        events.PhaseEnded(2, 14, 0.93, 80.0, True),
        events.Notice("warning", "Skipped x.jpg: not an image"),
        events.RunStarted("/tmp/run"),
    ]
    assert {type(e).__name__ for e in samples} == set(codec.EVENT_KINDS)
    for event in samples:
        back = codec.event_from_data(decode(encode({"type": "event", "event":
                                                    codec.event_to_data(event)}))["event"])
        assert type(back) is type(event)
        for a, b in zip(vars(back).values(), vars(event).values(), strict=True):
            assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("data", [None, [], {"kind": "Exec", "code": "x"},
                                  {"kind": "Notice", "level": "info"},
                                  {"kind": "Notice", "level": "info", "message": ["list"]}])
def test_unknown_or_malformed_events_are_dropped(data: object) -> None:
    assert codec.event_from_data(data) is None


def test_errors_keep_their_kind_message_and_path() -> None:
    err = codec.error_from_data(codec.error_to_data(DatasetError("The folder x is empty.")))
    assert type(err) is DatasetError and str(err) == "The folder x is empty."
    exc = RecompileRequired("recompile")
    exc.path = Path("/a/b")  # type: ignore[attr-defined]
    back = codec.error_from_data(codec.error_to_data(exc))
    assert type(back) is RecompileRequired and back.path == Path("/a/b")  # type: ignore[attr-defined]
    # A bug in the engine arrives as a TlguiError that says where the details are,
    # and an unknown kind never becomes anything but that.
    bug = codec.error_from_data(codec.error_to_data(KeyError("k"), "/logs/engine.log"))
    assert isinstance(bug, codec.EngineError) and "/logs/engine.log" in str(bug)
    forged = codec.error_from_data({"kind": "SystemExit", "message": "bye"})
    assert type(forged) is codec.EngineError and isinstance(forged, TlguiError)


def test_dataset_round_trip_keeps_odd_names() -> None:
    root = Path("/data/set")
    ds = Dataset(root, "class_folders", ("a", "b"),
                 train=(Sample(root / "a" / ODD, 0, 10, 123),),
                 validation=(Sample(root / "b" / "x.png", 1, 11, 456),),
                 problems=(Problem(root / "a" / "fifo.jpg", "not a regular file"),),
                 warnings=("Class 'a' has only 1 image(s)",),
                 conflicts=((root / "a" / "1.jpg", root / "b" / "1.jpg"),))
    back, token = codec.dataset_from_data(
        decode(encode({"type": "x", "d": codec.dataset_to_data(ds, "tok")}))["d"])
    assert token == "tok" and back == ds


def _tree() -> LayerNode:
    root = LayerNode("m", (), "Functional", params=30, trainable_params=26, children=[
        LayerNode("backbone", ("backbone",), "Functional", params=20, trainable_params=16,
                  editable=True, own=False, children=[
                      LayerNode("c1", ("backbone", "c1"), "Conv2D", "4 × 4 × 2", 10, 10,
                                True, 0, own=False, block=0),
                      LayerNode("bn", ("backbone", "bn"), "BatchNormalization", "", 10, 6,
                                True, 1, own=False, block=0, note="inference")]),
        LayerNode("classifier", ("classifier",), "Dense", params=10, trainable_params=10)])
    root.blocks = [Block("stem", 0, 1)]
    return link(root)


def test_model_info_and_summary_round_trip() -> None:
    info = ModelInfo(("a", "b"), 160, "MobileNetV2", TrainConfig(), _tree(),
                     own_flags(_tree()), trained=True, run=Path("/runs/r1"))
    back = codec.model_info_from_data(
        decode(encode({"type": "x", "m": codec.model_info_to_data(info)}))["m"])
    assert to_dict(back.tree) == to_dict(info.tree) and back.config == info.config
    assert back.compiled_flags == info.compiled_flags and not back.needs_recompile
    assert back.param_counts() == (10, 30)  # only the head trains: the backbone is frozen
    summary = TrainSummary([{"epoch": 1, "phase": 1, "val_accuracy": 0.5}], Path("/r"),
                           {1: 2.0}, {1: 0.5}, 1.0, True, (Problem(Path(ODD), "gone"),), True)
    assert codec.summary_from_data(codec.summary_to_data(summary)) == summary


@pytest.mark.parametrize("bad", [[], {"name": 3}, {"name": "m", "type": "F", "shape": "",
                                                    "params": True, "trainable_params": 0,
                                                    "editable": False, "own": True}])
def test_a_malformed_tree_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="layer tree"):
        from_dict(bad)


def test_a_deep_tree_is_refused() -> None:
    node: dict[str, object] = {"name": "x", "type": "L", "shape": "", "params": 0,
                               "trainable_params": 0, "editable": False, "own": True}
    for _ in range(50):
        node = {**node, "children": [node]}
    with pytest.raises(ValueError, match="too large or too deep"):
        from_dict(node)


def test_evaluation_and_predictions_round_trip() -> None:
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    ev = summarize([Path("a"), Path(ODD), Path("c")], np.array([0, 0, 1]), probs, ("x", "y"))
    back = evaluation_from_data(evaluation_to_data(ev))
    assert back.accuracy == ev.accuracy and back.misses == ev.misses
    np.testing.assert_array_equal(back.confusion, ev.confusion)
    with pytest.raises(ValueError, match="not an evaluation"):
        evaluation_from_data({"class_names": ["a"], "confusion": [[1, 2]]})
    p = Prediction(Path(ODD), (("x", 0.75), ("y", 0.25)))
    assert codec.prediction_from_data(codec.prediction_to_data(p)) == p
    e = Prediction(Path("gone.jpg"), error="no such file")
    assert codec.prediction_from_data(codec.prediction_to_data(e)) == e


@pytest.mark.parametrize(("key", "value"), [
    ("confusion", [[1e999, 0], [0, 1]]),  # JSON's 1e999 is infinity: int() overflowed
    ("confusion", [[-3, 0], [0, 1]]),
    ("confusion", [[1.5, 0], [0, 1]]),
    ("misses", [["x.jpg", 0, 7, 0.5, 0.5]]),  # a class the model does not have
    ("misses", [["x.jpg", 0, 1, 2.0, 0.5]]),
    ("class_names", ["a", "a"]),
])
def test_an_edited_evaluation_file_is_refused_not_crashed_on(key: str, value: object) -> None:
    """A run folder's evaluation.json may have been edited: opening a run expects
    ValueError only, so every bad number must end as one."""
    good = {"class_names": ["a", "b"], "split": "test", "confusion": [[1, 0], [0, 1]],
            "per_class": [["a", 1, 1, 1], ["b", 1, 1, 1]], "accuracy": 1.0, "misses": []}
    assert evaluation_from_data(json.loads(json.dumps(good))).accuracy == 1.0
    with pytest.raises(ValueError, match="not an evaluation"):
        evaluation_from_data(json.loads(json.dumps({**good, key: value})))


def test_an_evaluation_files_own_figures_give_way_to_its_matrix() -> None:
    """Rows missing, rows for other classes, an accuracy the matrix contradicts: the
    Evaluate tab reads one row per class, so they are computed again from the counts."""
    data = {"class_names": ["a", "b"], "split": "validation", "confusion": [[3, 1], [0, 4]],
            "per_class": [], "accuracy": 1e999, "misses": []}
    ev = evaluation_from_data(json.loads(json.dumps(data)))
    assert ev.accuracy == pytest.approx(7 / 8)
    assert [m.name for m in ev.per_class] == ["a", "b"]
    assert [m.support for m in ev.per_class] == [4, 4]
    assert ev.per_class[1].precision == pytest.approx(4 / 5)
