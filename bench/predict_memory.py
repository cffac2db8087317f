"""Peak memory and time of ``tlgui predict FOLDER --csv OUT`` as the folder grows.

Usage::

    python bench/make_synthetic.py /tmp/syn10k --images 10000
    python bench/make_synthetic.py /tmp/syn100k
    python bench/predict_memory.py /tmp/syn10k /tmp/syn100k [--baseline /tmp/old_checkout]

A tiny model (global average pooling and one dense layer, 32 px, 50 classes) is saved
first, so the figures are those of finding, decoding and writing the files, not of a
backbone. Each prediction runs ``python -m tlgui predict`` in a fresh process; the peak
resident memory is that process's. With ``--baseline DIR`` the same commands run with
the ``tlgui`` package found in ``DIR`` as well, one after the other, under the same load.
The CSV files of both are compared: they must be byte-identical.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


_MODEL = """
import sys
import keras
from tlgui.core.model_file import save_keras
classes = int(sys.argv[2])
inputs = keras.Input((32, 32, 3))
x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
outputs = keras.layers.Dense(classes, activation="softmax")(x)
save_keras(keras.Model(inputs, outputs), sys.argv[1],
           [f"class_{i:03d}" for i in range(classes)], {"image_size": 32})
"""


def _tiny_model(path: Path, classes: int) -> Path:
    # In a child: a parent holding Keras would pass its peak memory on to the children
    # it starts (Linux keeps the larger peak across fork and exec).
    subprocess.run([sys.executable, "-c", _MODEL, str(path), str(classes)], check=True,
                   cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def _predict(package_dir: Path, model: Path, folder: Path, out: Path) -> tuple[float, float]:
    """Runs the command in a child; returns (seconds, the child's peak RSS in MiB)."""
    code = ("import resource, subprocess, sys; "
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); "
            "sys.exit(r.returncode)")
    env = dict(os.environ, PYTHONPATH=str(package_dir))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "tlgui",
                           "predict", str(model), str(folder), "--csv", str(out),
                           "--batch-size", "256"],
                          env=env, cwd=package_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"predict failed in {package_dir}:\n{done.stderr[-2000:]}")
    return seconds, float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--baseline", type=Path, help="a folder holding an older tlgui package")
    p.add_argument("--classes", type=int, default=50)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tlgui-predict-memory-"))
    os.environ["TLGUI_CACHE_DIR"] = str(work / "cache")
    os.environ["TLGUI_DATA_DIR"] = str(work / "data")
    model = _tiny_model(work / "tiny.keras", args.classes)
    versions = [("this", REPO)] + ([("baseline", args.baseline)] if args.baseline else [])
    for folder in args.folders:
        written = {}
        for name, package_dir in versions:
            out = work / f"{folder.name}-{name}.csv"
            seconds, rss = _predict(package_dir, model, folder, out)
            rows = sum(1 for _ in out.open(encoding="utf-8")) - 1
            written[name] = out.read_bytes()
            print(f"{folder} [{name}]: {seconds:.1f} s, peak RSS {rss:.0f} MiB, "
                  f"{rows} rows")
            out.unlink()
        if len(written) == 2:
            same = written["this"] == written["baseline"]
            print(f"{folder}: the CSV files are {'identical' if same else 'DIFFERENT'}")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
