"""Big folders: wall time, peak memory, disk and images/s from 1,000 to 100,000 images.

For each size it makes (once, under ``--work``) a synthetic folder of 128 px JPEGs, 100
per class up to 500 classes, then, each in a process of its own:

1. scans it (``tlgui.core.dataset.scan``; the time of the call alone, and the process's
   peak RSS);
2. trains the default model (MobileNetV2, 160 px, cached views) on it with short epochs,
   on an empty decode cache, and records the wall time, the peak RSS (``os.wait4``), the
   largest size of the spill folder while it ran, and the cache's size afterwards.

``--repo`` adds the same rows for another checkout (e.g. a worktree of the commit before
spilling) run side by side, so that ratios come from one run. Example::

    .venv/bin/python bench/scale.py --sizes 2000,20000 --repo /tmp/tlgui-before
    .venv/bin/python bench/scale.py --sizes 1000,10000,100000

It prints a Markdown table and writes ``scale.json`` under ``--work``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "weights" / "models"
PER_CLASS = 100
MAX_CLASSES = 500

SCAN = """
import json, resource, sys, time
from tlgui.core.dataset import scan
t = time.monotonic()
ds = scan(sys.argv[1])
s = time.monotonic() - t
print(json.dumps({"scan_s": s, "train": len(ds.train), "validation": len(ds.validation),
                  "classes": len(ds.class_names), "problems": len(ds.problems),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_folder(root: Path, n: int, size: int = 128, seed: int = 0) -> Path:
    """``n`` distinct JPEGs in ``n // 100`` class folders (at most 500); kept between runs.

    Each class has a colour and a stripe direction of its own; every image gets its own
    noise, so no two files are the same bytes (a scan lists duplicates).
    """
    classes = max(2, min(MAX_CLASSES, n // PER_CLASS))
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for c in range(classes):
        folder = root / f"class_{c:03d}"
        folder.mkdir(parents=True)
        colour = rng.integers(30, 226, 3).astype(np.float32)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 24)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        base = colour * (0.65 + 0.35 * wave[..., None])
        count = n // classes + (1 if c < n % classes else 0)
        for i in range(count):
            shift = rng.integers(-40, 40, 3)
            noise = rng.integers(-20, 21, (size, size, 3))
            img = np.clip(base + shift + noise, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"img_{i:05d}.jpg", quality=85)
    done.touch()
    return root


def _run(cmd: list[str], env: dict[str, str], cwd: Path, watch: Path | None = None
         ) -> tuple[str, float, float, int]:
    """Runs ``cmd``; returns (output, wall s, peak RSS MiB from ``os.wait4``, largest size
    of ``watch`` while it ran)."""
    peak_disk = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak_disk
        while not stop.wait(1.0):
            if watch is not None:
                peak_disk = max(peak_disk, _du(watch))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    t = time.monotonic()
    log = Path(env["TLGUI_LOG_DIR"]) / "bench-output.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        # The checkout under test is the working folder: ``python -m`` puts it first on the
        # path, before PYTHONPATH.
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t
    stop.set()
    poller.join()
    rc = os.waitstatus_to_exitcode(status)
    out = log.read_text(errors="replace")
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd[:5])} failed (exit {rc}):\n{out[-3000:]}")
    return out, wall, usage.ru_maxrss / 1024, peak_disk


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total


def measure(repo: Path, label: str, data: Path, n: int, work: Path, args: argparse.Namespace,
            extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    tag = f"{label}-{n}"
    dirs = {k: work / "runs" / tag / k for k in ("cache", "data", "logs")}
    shutil.rmtree(work / "runs" / tag, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(repo), TF_CPP_MIN_LOG_LEVEL="3",
               TLGUI_CACHE_DIR=str(dirs["cache"]), TLGUI_DATA_DIR=str(dirs["data"]),
               TLGUI_LOG_DIR=str(dirs["logs"]), **(extra_env or {}))
    out, _, scan_rss, _ = _run([sys.executable, "-c", SCAN, str(data)], env, repo)
    scanned = json.loads(out.strip().splitlines()[-1])
    cmd = [sys.executable, "-m", "tlgui.cli", "--device", "cpu", "train", str(data),
           "--epochs", str(args.epochs), "--fine-tune-epochs", str(args.fine_tune_epochs),
           "--weights-dir", str(args.weights_dir)]
    _, wall, rss, spill_peak = _run(cmd, env, repo, watch=dirs["cache"] / "spill")
    cache_bytes = _du(dirs["cache"])
    version = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    row = {"code": f"{label} {version}".strip(), "images": n, "classes": scanned["classes"],
           "scan_s": scanned["scan_s"], "scan_rss_mib": scan_rss, "train_s": wall,
           "peak_rss_mib": rss, "spill_peak_mb": spill_peak / 2**20,
           "cache_mb": cache_bytes / 2**20, "images_per_s": n / wall,
           "problems": scanned["problems"]}
    print(json.dumps(row), flush=True)
    if not args.keep_cache:
        shutil.rmtree(work / "runs" / tag, ignore_errors=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| code | images | classes | scan s | train wall s | peak RSS MiB | spill peak MB "
             "| decode cache MB | images/s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['code']} | {r['images']:,} | {r['classes']} | {r['scan_s']:.1f} | "
                     f"{r['train_s']:.0f} | {r['peak_rss_mib']:,.0f} | "
                     f"{r['spill_peak_mb']:,.0f} | {r['cache_mb']:,.0f} | "
                     f"{r['images_per_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--work", type=Path, default=Path("/tmp/tlgui-scale"))
    p.add_argument("--weights-dir", type=Path, default=WEIGHTS)
    p.add_argument("--epochs", type=int, default=2, help="phase 1 epochs")
    p.add_argument("--fine-tune-epochs", type=int, default=1, help="phase 2 epochs")
    p.add_argument("--repo", type=Path, action="append", default=[],
                   help="another checkout to run side by side (repeatable)")
    p.add_argument("--keep-cache", action="store_true")
    p.add_argument("--skip-this", action="store_true",
                   help="run only the --repo checkouts (rows of this one are in an earlier run)")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for n in (int(s) for s in args.sizes.split(",")):
        t = time.monotonic()
        data = make_folder(args.work / f"data-{n}", n)
        print(f"# {n} images ready in {time.monotonic() - t:.0f} s", flush=True)
        for repo in ([] if args.skip_this else [REPO]) + args.repo:
            label = "this" if repo == REPO else repo.name
            rows.append(measure(repo, label, data, n, args.work, args))
    (args.work / "scale.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
