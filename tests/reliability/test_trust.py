"""Trust: the user's files are never changed, model files run no code, nothing goes online."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import keras
import pytest

from tests.corpus.build import Corpus, build_corpus
from tests.reliability.helpers import TINY_P1, tree_digest
from tlgui.core.dataset import scan
from tlgui.core.errors import ModelFileError
from tlgui.core.export import export_model, export_run
from tlgui.core.model_file import load_keras, save_keras
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.predict import Prediction, Predictor, sort_into, write_csv
from tlgui.core.training import run_training


class NetworkBlocked(OSError):
    """Raised instead of any network connection during the flow."""


def _block_network(mp: pytest.MonkeyPatch, attempts: list[str]) -> None:
    def refuse(what: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise NetworkBlocked(f"network access attempted: {what}")
        return blocked

    for name in ("connect", "connect_ex", "sendto"):
        mp.setattr(socket.socket, name, refuse(f"socket.{name}"))
    mp.setattr(socket, "create_connection", refuse("create_connection"))
    mp.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Scan, train, export and predict on the corpus with the network blocked."""
    base = tmp_path_factory.mktemp("trust")
    corpus = build_corpus(base)
    before = tree_digest(corpus.root)
    outside_before = tree_digest(corpus.outside)
    attempts: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        _block_network(mp, attempts)
        ds = scan(corpus.root)
        result = run_training(ds, TINY_P1, cache=PixelCache(base / "cache"),
                              run_root=base / "runs")
        exported = export_model(result.model.model, result.model.class_names, 32, "keras",
                                base / "export" / "model.keras")
        predictor = Predictor.load(exported[0])
        rows = predictor.predict_paths([corpus.root])
        write_csv(rows, base / "predictions.csv")
        copied = sort_into(rows, base / "sorted", inputs=[corpus.root])
        after = tree_digest(corpus.root)
    return {"corpus": corpus, "before": before, "after": after, "attempts": attempts,
            "rows": rows, "copied": copied, "outside_before": outside_before}


def test_dataset_tree_is_byte_identical_after_everything(flow: dict[str, Any]) -> None:
    corpus: Corpus = flow["corpus"]
    assert flow["before"] == flow["after"]
    assert tree_digest(corpus.outside) == flow["outside_before"]  # a symlink's target too
    assert len(flow["before"]) > len(corpus.expected)  # folders and links are in it


def test_prediction_on_the_corpus_never_raises(flow: dict[str, Any]) -> None:
    corpus: Corpus = flow["corpus"]
    rows: list[Prediction] = flow["rows"]
    by_rel = {corpus.rel(r.path): r for r in rows}
    for rel, exp in corpus.expected.items():
        row = by_rel.get(rel)
        if exp.outcome in ("used", "converted"):
            assert row is not None and row.error is None, (exp.case, row)
        elif row is not None:  # collected by its suffix: an error, not a crash
            assert row.error or row.top, (exp.case, row)
    assert by_rel["alpha/truncated.jpg"].error.startswith("corrupt or truncated")
    assert by_rel["alpha/zero.jpg"].error
    assert sum(flow["copied"].values()) == sum(1 for r in rows if r.error is None)


def test_no_network_access_in_the_whole_flow(flow: dict[str, Any]) -> None:
    assert flow["attempts"] == []
    # The block itself works: an attempt would have been refused and recorded.
    attempts: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        _block_network(mp, attempts)
        with pytest.raises(NetworkBlocked):
            socket.create_connection(("example.com", 80), timeout=1)
    assert attempts and attempts[0].startswith("create_connection")


def _lambda_model(marker: Path) -> Any:
    # A lambda (not a named function) is stored as bytecode in the file: what a crafted
    # model would use to run code on the machine that loads it.
    # The path is a constant in its bytecode (Keras cannot reload lambda defaults).
    code = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    touch = keras.layers.Lambda(eval(code))
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="softmax")(touch(inputs))
    return keras.Model(inputs, outputs)


def test_model_file_with_a_lambda_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    crafted = tmp_path / "crafted.keras"
    save_keras(_lambda_model(marker), crafted, ("cat", "dog"), {"image_size": 32})
    marker.unlink()  # building the model ran the function once; loading must not
    with pytest.raises(ModelFileError, match=r"crafted\.keras.*refused for safety"):
        load_keras(crafted)
    with pytest.raises(ModelFileError, match="refused for safety"):
        Predictor.load(crafted)
    with pytest.raises(ModelFileError, match="refused for safety"):
        export_run(crafted, "keras", tmp_path / "out.keras")
    assert not marker.exists()
    assert not (tmp_path / "out.keras").exists()
    # The marker is real: an unsafe load (never done by tlgui) would have run the code.
    keras.models.load_model(crafted, safe_mode=False, compile=False)
    assert marker.exists()
