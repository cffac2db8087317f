"""One of two processes training together through ``keras.distribution.initialize``.

    KERAS_BACKEND=jax KERAS_DISTRIBUTION_JOB_ADDRESSES=127.0.0.1:PORT \\
    KERAS_DISTRIBUTION_NUM_PROCESSES=2 KERAS_DISTRIBUTION_PROCESS_ID=I \\
        python -m tests.core.multihost_run OUT_DIR

Run by test_distribution, twice at once, on one machine. Trains parallel_run's tiny run
with ``devices=all`` (one CPU device per process) and prints one JSON line: the weights'
checksum, the history and whether this process wrote a run folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np

from tests.core.parallel_run import CONFIG
from tests.imagegen import make_dataset
from tlgui.core.dataset import scan
from tlgui.core.distribution import join_hosts
from tlgui.core.training import run_training


def main(out: Path) -> dict[str, object]:
    processes = join_hosts()
    ds = scan(make_dataset(out / "d", per_class=7))
    result = run_training(ds, CONFIG.replace(devices="all"), run_root=out / "runs")
    weights = result.model.model.get_weights()
    return {"process": int(jax.process_index()), "processes": processes,
            "devices": [str(d) for d in jax.devices()],
            "checksum": float(sum(np.abs(w).sum() for w in weights)),
            "weights": [w.ravel()[:3].tolist() for w in weights if w.size][-2:],
            "val_accuracy": [h["val_accuracy"] for h in result.history],
            "loss": [h["loss"] for h in result.history],
            "wrote_run": result.run is not None}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
