"""Peak memory and time of evaluating a classifier on a big validation split.

Usage::

    python bench/make_synthetic.py /tmp/syn10k --images 10000
    python bench/evaluate_memory.py /tmp/syn10k [--size 128] [--baseline /tmp/old_checkout]

The folder is scanned with half of it as the validation split, and a tiny model
(global average pooling and one dense layer, at ``--size`` pixels) is evaluated on it
with the pixel cache off, so every image is decoded and resized: the figures are those
of holding pixels, not of a backbone. Each evaluation runs in a fresh process; with
``--baseline DIR`` the same runs with the ``tlgui`` package found in ``DIR`` too. The
two evaluations (confusion, accuracy, misses) must be identical; a digest of each is
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import hashlib, json, resource, sys, time
import keras
from tlgui.core.config import SplitConfig
from tlgui.core.dataset import scan
from tlgui.core.evaluate import evaluate_model
from tlgui.core.metrics import evaluation_to_data
from tlgui.core.pixel_cache import PixelCache
folder, size = sys.argv[1], int(sys.argv[2])
ds = scan(folder, SplitConfig(validation_fraction=0.5))
keras.utils.set_random_seed(0)
inputs = keras.Input((size, size, 3))
x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
model = keras.Model(inputs, keras.layers.Dense(ds.num_classes, activation="softmax")(x))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
ev = evaluate_model(model, size, ds, cache=PixelCache(enabled=False), batch_size=64)
seconds = time.perf_counter() - t0
data = json.dumps(evaluation_to_data(ev), sort_keys=True).encode()
print(json.dumps({"seconds": seconds, "images": ev.total, "rss_before_mib": before,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "digest": hashlib.sha256(data).hexdigest()[:16]}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--baseline", type=Path, help="a folder holding an older tlgui package")
    args = p.parse_args()
    versions = [("this", REPO)] + ([("baseline", args.baseline)] if args.baseline else [])
    for folder in args.folders:
        for name, package_dir in versions:
            done = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(args.size)],
                                  env=dict(os.environ, PYTHONPATH=str(package_dir)),
                                  cwd=package_dir, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"evaluation failed in {package_dir}:\n{done.stderr[-2000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{folder} [{name}] at {args.size} px: {r['images']} images in "
                  f"{r['seconds']:.1f} s, peak RSS {r['rss_mib']:.0f} MiB (before the "
                  f"evaluation {r['rss_before_mib']:.0f} MiB), evaluation {r['digest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
