"""Scan time and peak memory on big folders, each scan in a fresh process.

Usage::

    python bench/make_synthetic.py /tmp/syn100k                # 100,000 files
    python bench/scan_speed.py /tmp/syn100k [/tmp/syn10k ...] [--repeat 3]
        [--baseline /tmp/old_checkout] [--cold] [--cli]

For each folder, prints the median scan time (wall clock, and the CPU time of the
process: on a machine shared with other work the wall clock varies, the CPU time much
less) over ``--repeat`` runs and the peak resident memory of the scanning process
(the whole process: Python, numpy and Pillow included). ``--baseline DIR`` runs the
same scans with the ``tlgui`` package found in ``DIR`` too, alternating with this
checkout's, so both are measured side by side under the same load.

``--cold`` first asks the kernel to drop the folder's file contents from the page
cache (``posix_fadvise(DONTNEED)`` on every file; no root needed). Directory entries
and inodes stay cached, so this is "cold file data", not a fresh boot. ``--cli`` times
``python -m tlgui scan FOLDER`` end to end (imports and printing included) instead of
the ``scan`` call alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import json, resource, sys, time
from tlgui.core.dataset import scan
t0, c0 = time.perf_counter(), time.process_time()
ds = scan(sys.argv[1])
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": seconds, "cpu": cpu, "usable": len(ds.train) + len(ds.validation)
                  + len(ds.test), "problems": len(ds.problems),
                  "conflicts": len(ds.conflicts),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_CLI = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
subprocess.run([sys.executable, "-m", "tlgui", "scan", sys.argv[1]], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seconds = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "cpu": use.ru_utime + use.ru_stime, "usable": -1,
                  "problems": -1, "conflicts": -1, "rss_mib": use.ru_maxrss / 1024}))
"""


def evict(folder: Path) -> int:
    """Drops the file contents below ``folder`` from the page cache; returns the count."""
    n = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            n += 1
    return n


def run_once(folder: Path, package_dir: Path, cli: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(package_dir))
    out = subprocess.run([sys.executable, "-c", _CLI if cli else _CHILD, str(folder)],
                         env=env, check=True, capture_output=True, text=True,
                         cwd=package_dir)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline", type=Path, help="a folder holding an older tlgui package")
    p.add_argument("--cold", action="store_true", help="drop file contents from the cache "
                                                       "before each scan")
    p.add_argument("--cli", action="store_true", help="time `python -m tlgui scan`")
    args = p.parse_args()
    versions = [("this", REPO)] + ([("baseline", args.baseline)] if args.baseline else [])
    for folder in args.folders:
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in versions}
        for _ in range(args.repeat):
            for name, package_dir in versions:
                if args.cold:
                    evict(folder)
                runs[name].append(run_once(folder, package_dir, args.cli))
        for name, results in runs.items():
            seconds = statistics.median(r["seconds"] for r in results)
            cpu = statistics.median(r["cpu"] for r in results)
            rss = max(r["rss_mib"] for r in results)
            last = results[-1]
            print(f"{folder} [{name}{', cold' if args.cold else ''}"
                  f"{', cli' if args.cli else ''}]: {seconds:.2f} s (CPU {cpu:.2f} s) median of "
                  f"{len(results)}, peak RSS {rss:.0f} MiB, usable {last['usable']:.0f}, "
                  f"problems {last['problems']:.0f}, conflicts {last['conflicts']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
