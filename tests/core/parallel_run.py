"""Data-parallel training against one device, under JAX with virtual CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \\
        python -m tests.core.parallel_run OUT_DIR

Run by test_distribution. Trains the same tiny run from the same seed, from a model built
before the run (as the window passes one), on one device and on two; then once on two
devices from a model built inside the run (as the command line does). Prints one JSON
line with what each check saw.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import keras
import numpy as np

from tests.imagegen import make_dataset
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.errors import ConfigError
from tlgui.core.model import ClassifierModel
from tlgui.core.training import run_training

# 3 classes x 7 images, a fifth held out: 18 training images in batches of 4 leave a ragged
# batch of 2, and 3 validation images a batch of 3, which 2 devices cannot share equally
# (the padding of ShardedBatches). Dropout and class weights stay on.
CONFIG = TrainConfig(weights="none", image_size=32, batch_size=4, fine_tune_at=140,
                     device="cpu", phase1=PhaseConfig(epochs=1, learning_rate=1e-3),
                     phase2=PhaseConfig(epochs=2, learning_rate=1e-3,
                                        early_stopping_patience=None))


def _train(ds: Any, devices: str, out: Path, prebuilt: bool) -> dict[str, Any]:
    config = CONFIG.replace(devices=devices)
    model = None
    if prebuilt:
        keras.utils.set_random_seed(config.seed)
        model = ClassifierModel.build(config, ds.class_names)
        model.compile(config.phase1)
    t0 = time.monotonic()
    result = run_training(ds, config, model=model, run_root=out / "runs")
    seconds = time.monotonic() - t0
    assert result.run is not None
    weights = result.model.model.get_weights()
    shardings = {type(v.value.sharding).__name__ for v in result.model.model.variables}
    # Usable after the run on one device: a prediction outside the distribution.
    probs = result.model.model.predict(np.zeros((3, 32, 32, 3), np.uint8), verbose=0)
    return {"weights": weights, "history": result.history, "seconds": seconds,
            "status": result.run.read_status().get("devices"), "shardings": sorted(shardings),
            "probs": np.asarray(probs)}


def _compare(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    diffs = [float(np.max(np.abs(a - b))) if a.size else 0.0
             for a, b in zip(one["weights"], two["weights"], strict=True)]
    scale = max(float(np.max(np.abs(a))) for a in one["weights"] if a.size)
    return {
        "max_weight_diff": max(diffs), "weight_scale": scale,
        "val_accuracy": [[h["val_accuracy"] for h in r["history"]] for r in (one, two)],
        "val_loss": [[h["val_loss"] for h in r["history"]] for r in (one, two)],
        "loss": [[h["loss"] for h in r["history"]] for r in (one, two)],
        "max_prob_diff": float(np.max(np.abs(one["probs"] - two["probs"]))),
        "status": [one["status"], two["status"]],
        "shardings_after": two["shardings"],
        "seconds": [one["seconds"], two["seconds"]],
    }


def main(out: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {"backend": keras.backend.backend(),
                            "jax_devices": [str(d) for d in jax.devices()]}
    ds = scan(make_dataset(out / "d", per_class=7))
    seen["sizes"] = [len(ds.train), len(ds.validation)]
    one = _train(ds, "1", out, prebuilt=True)
    two = _train(ds, "2", out, prebuilt=True)
    seen.update(_compare(one, two))
    seen["checksum_two"] = float(sum(np.abs(w).sum() for w in two["weights"]))
    inside = _train(ds, "2", out, prebuilt=False)
    seen["inside_epochs"] = len(inside["history"])
    seen["inside_status"] = inside["status"]
    seen["inside_shardings_after"] = inside["shardings"]
    for setting, batch in (("3", 4), ("2", 5), ("all", 5)):
        try:
            run_training(ds, CONFIG.replace(devices=setting, batch_size=batch),
                         run_root=out / "refused")
            seen[f"refused_{setting}_{batch}"] = None
        except ConfigError as exc:
            seen[f"refused_{setting}_{batch}"] = str(exc)
    seen["refused_left_runs"] = (out / "refused").exists()
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
