"""The training path uses Keras 3 APIs only: the same small run under the JAX backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from pathlib import Path
import keras
from tests.imagegen import make_dataset
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.training import run_training
ds = scan(make_dataset(Path(sys.argv[1]) / "d", per_class=8))
for mode in ("cached_views",):
    cfg = TrainConfig(weights="none", image_size=32, batch_size=8, fine_tune_at=140,
                      phase1=PhaseConfig(epochs=1), phase2=PhaseConfig(epochs=1))
    cfg = cfg.replace(augment=cfg.augment.__class__(mode=mode))
    r = run_training(ds, cfg, run_root=Path(sys.argv[1]) / "runs")
    print(json.dumps({"backend": keras.backend.backend(), "mode": mode,
                      "epochs": [h["epoch"] for h in r.history],
                      "model": (r.run.path / "model.keras").is_file()}))
"""


def test_small_end_to_end_under_jax(tmp_path: Path) -> None:
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1
    for ln in lines:
        assert '"backend": "jax"' in ln and '"epochs": [1, 2]' in ln and '"model": true' in ln
