"""A training process killed with SIGKILL, then started again.

The child trains a tiny model and prints a line at each epoch end; the test kills it
after the first one (in the middle of writing the checkpoint, most likely). Afterwards
the run folder must read as incomplete, every file under a final name must be whole,
the pixel cache must be verified entry by entry, and a new run must complete.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np

from tests.imagegen import make_dataset
from tests.reliability.helpers import TINY_P1
from tlgui.core.dataset import scan
from tlgui.core.model_file import load_keras
from tlgui.core.pixel_cache import PixelCache, load_pixels
from tlgui.core.runs import list_runs, read_run
from tlgui.core.training import run_training

REPO = Path(__file__).resolve().parents[2]
CHILD = r"""
import sys
from pathlib import Path
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.events import EpochEnded
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.training import run_training

data, cache, runs = (Path(a) for a in sys.argv[1:4])
config = TrainConfig(weights="none", image_size=32, batch_size=8,
                     phase1=PhaseConfig(epochs=200, early_stopping_patience=None),
                     phase2=PhaseConfig(epochs=0))

def report(event):
    if isinstance(event, EpochEnded):
        print("EPOCH", event.epoch, flush=True)

print("START", flush=True)
run_training(scan(data), config, report=report, cache=PixelCache(cache), run_root=runs)
print("DONE", flush=True)
"""


def _read_lines(proc: subprocess.Popen[str], out: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.put(line.strip())
    out.put("EOF")


def _wait_for(lines: queue.Queue[str], prefix: str, timeout: float) -> str:
    while True:
        line = lines.get(timeout=timeout)
        if line.startswith(prefix) or line == "EOF":
            return line


def _entry_ok(path: Path) -> bool:
    data = path.read_bytes()
    h, w, c, crc = (int.from_bytes(data[i:i + n], "little")
                    for i, n in ((6, 2), (8, 2), (10, 2), (12, 4)))
    body = data[16:]
    return data[:6] == b"TLGC1\0" and len(body) == h * w * c and zlib.crc32(body) == crc


def test_killed_training_leaves_an_incomplete_run_and_a_verified_cache(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", per_class=6)
    cache_root, runs = tmp_path / "cache", tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(cache_root), str(runs)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
    reader.start()
    try:
        assert _wait_for(lines, "EPOCH", timeout=180) == "EPOCH 1"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    # The run folder: marked incomplete, and nothing under a final name is partial.
    (run,) = list(runs.iterdir())
    info = read_run(run)
    assert info.state == "incomplete"
    assert [r.state for r in list_runs(runs)] == ["incomplete"]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "running" and status["pid"] == proc.pid
    for name in ("config.json", "classes.json"):
        json.loads((run / name).read_text())
    if (run / "model.keras").exists():  # the checkpoint may or may not have made it
        _model, names, _meta = load_keras(run / "model.keras")
        assert names == ("blue", "green", "red")
    leftovers = {p.name for p in run.iterdir()} - {
        "config.json", "classes.json", "status.json", "history.json", "history.csv",
        "model.keras", "layers.json"}
    assert all(n.startswith(".tlgui-tmp-") for n in leftovers), leftovers

    # The cache: every entry the killed process left is whole (written atomically).
    entries = sorted(cache_root.rglob("*.bin"))
    ds = scan(data)
    samples = (*ds.train, *ds.validation)
    assert len(entries) == len(samples)
    assert all(_entry_ok(p) for p in entries)
    # Damage two, as a torn write or a bad disk would; they are caught and decoded again.
    entries[0].write_bytes(entries[0].read_bytes()[:40])
    flipped = bytearray(entries[1].read_bytes())
    flipped[-5] ^= 0x55
    entries[1].write_bytes(bytes(flipped))
    cache = PixelCache(cache_root)
    x, kept, bad = load_pixels(samples, 32, cache)
    assert cache.stats.corrupt == 2 and cache.stats.decoded == 2
    assert cache.stats.hits == len(samples) - 2 and not bad
    fresh, _, _ = load_pixels(samples, 32, PixelCache(enabled=False))
    assert np.array_equal(x, fresh[kept])

    # Started again: a new run completes beside the incomplete one.
    result = run_training(ds, TINY_P1, cache=PixelCache(cache_root), run_root=runs)
    assert result.run is not None and read_run(result.run.path).state == "complete"
    assert sorted(r.state for r in list_runs(runs)) == ["complete", "incomplete"]
