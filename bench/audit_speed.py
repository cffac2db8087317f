"""Audit time against one default training run, side by side on one cache.

Runs, one after the other, each as its own ``tlgui`` process on the same fresh
``TLGUI_CACHE_DIR`` (wall time measured around the process, so Python and TensorFlow
start-up count):

1. ``tlgui audit DATA`` with an empty cache (cold: it decodes at 224 px);
2. ``tlgui audit DATA`` again (warm: the issue's figure);
3. ``tlgui audit DATA --image-size 160`` (cold at 160 px, the size training uses);
4. ``tlgui audit DATA --image-size 160`` again (warm);
5. ``tlgui train DATA`` with its defaults (its 160 px decodes are warm after step 3).

Prints a Markdown table with the ratios audit / training. Run from the repository root::

    .venv/bin/python bench/audit_speed.py --weights-dir ../shared/weights
    .venv/bin/python bench/audit_speed.py DATA --weights-dir W --skip-train
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, str]:
    """Runs a tlgui command; returns (wall seconds, its stdout)."""
    t0 = time.monotonic()
    with log.open("a") as err:
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                             check=True).stdout
    return time.monotonic() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data" /
                                                   "flower_photos"))
    p.add_argument("--weights-dir", default=str(REPO.parent / "shared" / "weights"))
    p.add_argument("--skip-train", action="store_true")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tlgui-audit-speed-"))
    env = {**os.environ, "TLGUI_CACHE_DIR": str(work / "cache"),
           "TLGUI_DATA_DIR": str(work / "data"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    tlgui = [sys.executable, "-m", "tlgui"]
    base = [*tlgui, "audit", args.data, "--weights-dir", args.weights_dir]
    rows: list[tuple[str, float, str]] = []
    for name, extra in (("audit 224 px, cold cache", []), ("audit 224 px, warm cache", []),
                        ("audit 160 px, cold cache", ["--image-size", "160"]),
                        ("audit 160 px, warm cache", ["--image-size", "160"])):
        secs, out = run([*base, *extra], env, work / "stderr.log")
        timing = next((line for line in out.splitlines() if line.startswith("Time:")), "")
        rows.append((name, secs, timing.removeprefix("Time: ")))
        print(f"{name}: {secs:.1f} s ({timing})", flush=True)
    if not args.skip_train:
        secs, _ = run([*tlgui, "train", args.data, "--weights-dir", args.weights_dir], env,
                      work / "stderr.log")
        rows.append(("train (defaults, 160 px decodes warm)", secs, ""))
        print(f"train: {secs:.1f} s", flush=True)
    train = rows[-1][1] if not args.skip_train else None
    print("\n| Run | Wall time (process) | / training | Stages (from the audit's summary) |")
    print("|---|---|---|---|")
    for name, secs, timing in rows:
        ratio = f"{secs / train:.2f}" if train else "-"
        print(f"| {name} | {secs:.1f} s | {ratio} | {timing} |")
    print(f"\nlogs and cache in {work}")


if __name__ == "__main__":
    main()
