"""Feature arrays above the memory budget live in a file: same values, files removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlgui.core import spill
from tlgui.core.errors import TlguiError
from tlgui.core.spill import DiskArray, FeatureStore, gather, put, select_rows, select_views


def _filled(shape: tuple[int, ...], store: FeatureStore) -> tuple[np.ndarray, spill.FeatureArray]:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(shape).astype(np.float16)
    arr = store.zeros(shape, np.float16, "t")
    for v in range(shape[0]):
        for start in range(0, shape[1], 7):  # chunks, as the feature pass writes them
            rows = np.arange(start, min(start + 7, shape[1]))
            put(arr, v, rows, ref[v, rows])
    return ref, arr


def test_a_disk_array_reads_back_what_numpy_holds(tmp_path: Path) -> None:
    with FeatureStore(budget=0, folder=tmp_path) as store:
        ref, arr = _filled((3, 50, 4, 5), store)
        assert isinstance(arr, DiskArray) and arr.shape == ref.shape
        rng = np.random.default_rng(1)
        rows = rng.permutation(50)[:20]
        views = rng.integers(0, 3, 20)
        assert np.array_equal(gather(arr, views, rows), ref[views, rows])
        # Selections compose as NumPy's fancy indexing does.
        keep = np.array([0, 3, 4, 9, 30, 49])
        sub = select_rows(arr, keep)
        assert np.array_equal(gather(sub, 2, np.arange(6)), ref[2, keep])
        one = select_views(sub, [1])
        assert one.shape == (1, 6, 4, 5)
        assert np.array_equal(gather(one, 0, np.array([5, 0])), ref[1, keep[[5, 0]]])
        # Writing through a selection lands on the selected rows.
        put(sub, 0, np.array([1, 2]), np.ones((2, 4, 5), np.float16))
        assert np.all(gather(arr, 0, np.array([3, 4])) == 1)
        assert np.array_equal(gather(arr, 0, np.array([2])), ref[0, [2]])
        spilled = list(tmp_path.rglob("*.bin"))
        assert len(spilled) == 1
    assert not spilled[0].exists() and not list(tmp_path.iterdir())


def test_the_budget_keeps_small_arrays_in_memory_and_spills_the_rest(tmp_path: Path) -> None:
    store = FeatureStore(budget=1000, folder=tmp_path)
    small = store.zeros((1, 10, 10), np.float32, "a")  # 400 bytes
    big = store.zeros((1, 10, 100), np.float32, "b")  # 4,000 bytes
    also_small = store.zeros((1, 10, 10), np.float32, "c")  # fits next to the first
    assert isinstance(small, np.ndarray) and isinstance(also_small, np.ndarray)
    assert isinstance(big, DiskArray)
    assert (store.in_memory, store.on_disk) == (800, 4000)
    store.close()
    assert not list(tmp_path.iterdir())


def test_the_budget_comes_from_the_environment_or_the_free_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spill.BUDGET_ENV, "3")
    assert spill.ram_budget() == 3 * 2**20
    monkeypatch.setenv(spill.BUDGET_ENV, "lots")
    monkeypatch.setattr(spill, "_available_system_memory", lambda: 64 * 2**30)
    assert spill.ram_budget() == spill.MAX_BUDGET
    monkeypatch.delenv(spill.BUDGET_ENV)
    monkeypatch.setattr(spill, "_available_system_memory", lambda: 512 * 2**20)
    assert spill.ram_budget() == 32 * 2**20  # a 16th of a short machine's memory
    monkeypatch.setattr(spill, "_available_system_memory", lambda: None)
    assert spill.ram_budget() == spill.MAX_BUDGET


def test_too_little_disk_is_said_before_the_pass(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    class Usage:
        free = 300 * 2**20

    monkeypatch.setattr(spill.shutil, "disk_usage", lambda _p: Usage())
    store = FeatureStore(budget=0, folder=tmp_path)
    with pytest.raises(TlguiError, match=r"do not fit in memory.*GB free.*TLGUI_CACHE_DIR"):
        store.zeros((2, 1000, 20000), np.float16, "cut")
    store.close()


def test_a_folder_left_by_a_killed_run_is_removed_by_the_next(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / f"{proc.stdout.strip()}-abcd0123"
    dead.mkdir()
    (dead / "train-cut-0.bin").write_bytes(b"x" * 10)
    alive = tmp_path / f"{os.getpid()}-ffff0000"
    alive.mkdir()
    stranger = tmp_path / "not-a-spill"
    stranger.mkdir()
    with FeatureStore(budget=0, folder=tmp_path) as store:
        store.zeros((1, 2, 2), np.float16, "x")
    assert not dead.exists()
    assert alive.exists() and stranger.exists()  # ours still running; not ours at all


def test_one_view_of_an_array_in_memory_is_not_a_copy() -> None:
    arr = np.zeros((3, 4, 2), np.float16)
    one = select_views(arr, [1])
    assert isinstance(one, np.ndarray) and one.shape == (1, 4, 2)
    assert np.shares_memory(one, arr)
    assert np.array_equal(select_views(arr, [2, 0]), arr[[2, 0]])


def test_a_spill_folder_that_cannot_be_made_stops_the_run_before_decoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.imagegen import make_dataset
    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.events import Event, StageProgress
    from tlgui.core.training import run_training

    ds = scan(make_dataset(tmp_path / "d", per_class=4))
    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("TLGUI_CACHE_DIR", str(not_a_folder))
    monkeypatch.setenv(spill.BUDGET_ENV, "0")
    events: list[Event] = []
    cfg = TrainConfig(weights="none", image_size=32, phase1=PhaseConfig(epochs=1),
                      phase2=PhaseConfig(epochs=0))
    with pytest.raises(TlguiError, match=r"Cannot create the folder .*cache-is-a-file"):
        run_training(ds, cfg, report=events.append, write_run=False)
    assert not any(isinstance(e, StageProgress) and e.stage == "decode" for e in events)
