"""The engine process driven through its client, as the window drives it (no Qt)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.imagegen import make_dataset
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.errors import Cancelled, DatasetError, RecompileRequired
from tlgui.core.events import EpochEnded, Event, PhaseStarted, RunStarted, StageProgress
from tlgui.core.layer_tree import own_flags, set_fine_tune_at
from tlgui.core.metrics import evaluation_from_data
from tlgui.core.runs import RunFolder
from tlgui.engine import codec
from tlgui.engine.client import EngineClient, describe_exit, engine_command
from tlgui.engine.protocol import encode

TINY = TrainConfig(weights="none", image_size=32, batch_size=8,
                   phase1=PhaseConfig(epochs=2), phase2=PhaseConfig(epochs=1, learning_rate=1e-5),
                   fine_tune_at=140)
LONG = TINY.replace(phase1=PhaseConfig(epochs=500, early_stopping_patience=None))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineClient]:
    c = EngineClient(log_dir=tmp_path_factory.mktemp("logs"))
    c.start()
    yield c
    c.stop()
    assert not c.alive


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, client: EngineClient) -> tuple:  # type: ignore[type-arg]
    root = make_dataset(tmp_path_factory.mktemp("d") / "colours", per_class=8)
    data = client.call("scan", {"root": str(root), "split": {}})
    return codec.dataset_from_data(data)


def _train_params(ds: object, token: str, config: TrainConfig, flags: object,
                  where: Path) -> dict[str, object]:
    flags_data = codec.flags_to_data(flags)
    return {"config": config.to_dict(), "dataset": codec.dataset_ref(ds, token, config.split),  # type: ignore[arg-type]
            "flags": flags_data, "compiled_flags": flags_data,
            "data_dir": str(where / "data"), "cache_dir": str(where / "cache")}


def test_scan_build_train_evaluate_open(client: EngineClient, dataset: tuple,  # type: ignore[type-arg]
                                        tmp_path: Path) -> None:
    ds, token = dataset
    assert ds.class_names == ("blue", "green", "red") and token
    info = codec.model_info_from_data(client.call(
        "build", {"config": TINY.to_dict(), "class_names": list(ds.class_names)}))
    assert info.backbone == "MobileNetV2" and not info.needs_recompile and not info.trained
    assert len(info.tree.blocks) > 10, "the backbone's blocks travel with the tree"
    seen: list[Event] = []
    # Settings loaded from a run made on a server with 4 GPUs: the window's own device
    # count (1 when it sends none) applies, not the server's.
    server_run = TINY.replace(devices="4")
    data = client.call("train", _train_params(ds, token, server_run, info.compiled_flags,
                                              tmp_path), report=seen.append)
    summary = codec.summary_from_data(data)
    assert summary.trained and summary.run is not None
    assert RunFolder(summary.run).read_status()["devices"]["count"] == 1
    assert [type(e) for e in seen if isinstance(e, RunStarted | PhaseStarted)] == \
        [RunStarted, PhaseStarted, PhaseStarted]
    assert [e.epoch for e in seen if isinstance(e, EpochEnded)] == [1, 2, 3]
    assert RunFolder(summary.run).read_status()["state"] == "complete"
    assert (summary.run / "layers.json").is_file()
    trained = codec.model_info_from_data(data["model"])
    assert trained.trained and trained.run == summary.run
    ev = evaluation_from_data(client.call(
        "evaluate", {"dataset": codec.dataset_ref(ds, token, TINY.split),
                     "run": str(summary.run)}))
    assert ev.total == len(ds.validation)
    assert (summary.run / "evaluation.json").is_file()
    opened = codec.model_info_from_data(client.call("open_run", {"run": str(summary.run)}))
    assert opened.trained and opened.compiled_flags == trained.compiled_flags


def test_the_gate_holds_in_the_engine_too(client: EngineClient, dataset: tuple,  # type: ignore[type-arg]
                                          tmp_path: Path) -> None:
    ds, token = dataset
    info = codec.model_info_from_data(client.call(
        "build", {"config": TINY.to_dict(), "class_names": list(ds.class_names)}))
    set_fine_tune_at(info.tree, 100)
    params = _train_params(ds, token, TINY, own_flags(info.tree), tmp_path)
    params["compiled_flags"] = codec.flags_to_data(info.compiled_flags)
    with pytest.raises(RecompileRequired):
        client.call("train", params)
    compiled = codec.flags_from_data(client.call("recompile", {
        "flags": codec.flags_to_data(own_flags(info.tree)),
        "phase": {"epochs": 1, "learning_rate": 1e-5}}))
    assert compiled == own_flags(info.tree)


def test_errors_arrive_as_their_own_kind(client: EngineClient, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=str(tmp_path / "missing")):
        client.call("scan", {"root": str(tmp_path / "missing")})
    assert client.alive, "a user's mistake never ends the engine"


@pytest.mark.parametrize("stage", ["features", "epochs"])
def test_cancel_takes_effect_within_one_batch(client: EngineClient, tmp_path: Path,
                                              stage: str) -> None:
    # Enough images that the frozen-feature pass takes many batches.
    root = make_dataset(tmp_path / "many", per_class=60, size=(64, 64))
    ds, token = codec.dataset_from_data(client.call("scan", {"root": str(root)}))
    cancel = threading.Event()
    asked: list[float] = []

    def report(event: Event) -> None:
        hit = (isinstance(event, StageProgress) and event.stage == "features"
               and event.done >= 2) if stage == "features" else isinstance(event, EpochEnded)
        if hit and not asked:
            asked.append(time.monotonic())
            cancel.set()

    params = _train_params(ds, token, LONG.replace(batch_size=4), (), tmp_path)
    params["flags"] = params["compiled_flags"] = []
    with pytest.raises(Cancelled) as caught:
        client.call("train", params, report=report, cancel=cancel)
    # One batch of this tiny model takes milliseconds; the rest is the message's way
    # there and back and the run folder's last writes.
    assert time.monotonic() - asked[0] < 2.0
    partial = codec.summary_from_data(caught.value.partial)  # type: ignore[attr-defined]
    assert partial.cancelled and len(partial.history) == (0 if stage == "features" else 1)
    assert RunFolder(partial.run).read_status()["state"] == "cancelled"  # type: ignore[arg-type]
    assert not partial.trained or stage == "epochs"
    assert client.alive


def test_a_killed_engine_is_reported_and_replaced(client: EngineClient, dataset: tuple,  # type: ignore[type-arg]
                                                  tmp_path: Path) -> None:
    ds, token = dataset
    states: list[tuple[str, dict[str, object]]] = []
    client.on_state = lambda s, d: states.append((s, d))
    pid = client.pid
    assert pid is not None
    params = _train_params(ds, token, LONG, (), tmp_path)
    params["flags"] = params["compiled_flags"] = []
    killed_at: list[float] = []

    def report(event: Event) -> None:
        if isinstance(event, EpochEnded) and not killed_at:
            killed_at.append(time.monotonic())
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(codec.EngineCrashed, match="SIGKILL") as caught:
        client.call("train", params, report=report)
    assert time.monotonic() - killed_at[0] < 2.0
    assert "next job starts a new engine" in str(caught.value)
    assert ("dead", {"description": describe_exit(-9), "expected": False,
                     "generation": client.generation}) in states
    assert client.call("ping")["pid"] not in (None, pid)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    client.on_state = None


def test_the_engine_exits_when_the_window_is_gone(tmp_path: Path) -> None:
    """No process stays behind: an engine whose window vanished (its pipe closed) exits."""
    proc = subprocess.Popen(engine_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL,
                            env=dict(os.environ, TLGUI_LOG_DIR=str(tmp_path)))
    assert proc.stdout is not None and proc.stdin is not None
    assert b'"hello"' in proc.stdout.readline()
    proc.stdin.write(encode({"type": "call", "id": 1, "method": "ping", "params": {}}))
    proc.stdin.flush()
    proc.stdin.close()
    proc.wait(timeout=20)
    assert proc.returncode == 0


def test_stop_kills_an_engine_that_does_not_listen(tmp_path: Path) -> None:
    c = EngineClient(log_dir=tmp_path)
    c.start()
    pid = c.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # frozen: it cannot read the shutdown
    t0 = time.monotonic()
    c.stop(grace_s=0.5)
    assert time.monotonic() - t0 < 2.0
    assert not c.alive


@pytest.mark.parametrize(("code", "words"), [(-9, "out of memory"), (-11, "crashed (SIGSEGV)"),
                                             (-6, "crashed (SIGABRT)"), (3, "code 3"),
                                             (None, "stopped answering")])
def test_exit_descriptions(code: int | None, words: str) -> None:
    assert words in describe_exit(code)
