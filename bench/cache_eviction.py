"""What the cache's size limit costs: recording uses on reads, a job's bookkeeping, and a
walk and an eviction over many entries.

In a temporary folder, with fake entries (``--size`` px, written directly: nothing is
decoded), in one process:

1. **reads**: ``--reads`` entries read back three ways, side by side: without recording
   a use (as before), recording a use that is due (every entry older than ten minutes:
   each read also sets its time) and recording one that is not (entries just used: one
   ``fstat`` more);
2. **bookkeeping**: ``settle`` after a pass over ``--entries`` images when the cache is
   far under its limit (the manifest and the ledger; no walk);
3. **walk and eviction**: ``inspect`` (a full walk) and ``evict`` down to half of the
   cache, over ``--entries`` entries.

Prints a Markdown table::

    .venv/bin/python bench/cache_eviction.py --entries 100000 --reads 10000
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--reads", type=int, default=10_000)
    p.add_argument("--size", type=int, default=8, help="entry side in pixels")
    p.add_argument("--work", default=None, help="folder for the fake cache (default: a "
                                                "temporary one, removed at the end)")
    args = p.parse_args()
    from tlgui.core import cache_control as cc
    from tlgui.core.dataset import Sample
    from tlgui.core.pixel_store import PixelStore, read_entry

    work = Path(args.work or tempfile.mkdtemp(prefix="tlgui-cache-bench-"))
    root = work / "cache"
    size = args.size
    rows: list[tuple[str, float]] = []
    base: list[float] = []
    try:
        writer = PixelStore(root, limit=10**15)
        samples = [Sample(work / "ds" / "c" / f"{i}.png", 0, i, 1) for i in range(args.entries)]
        (work / "ds" / "c").mkdir(parents=True)
        pixels = np.zeros((size, size, 3), dtype=np.uint8)
        t = time.perf_counter()
        for s in samples:
            writer.write(s, size, pixels)
        print(f"wrote {args.entries} entries in {time.perf_counter() - t:.1f} s")
        paths = [writer._entry(writer.key(s, size), size) for s in samples[:args.reads]]

        def age() -> None:
            old = time.time() - 3600
            for path in paths:
                os.utime(path, (old, old))

        def read_all(touch: bool) -> float:
            t = time.perf_counter()
            for path in paths:
                read_entry(path, size, touch=touch)
            return time.perf_counter() - t

        read_all(False)  # warm the page cache
        base, due, fresh = [], [], []
        for _ in range(3):  # interleaved, best of three: the machine is shared
            base.append(read_all(False))
            age()
            due.append(read_all(True))
            fresh.append(read_all(True))
        rows += [(f"read {args.reads} entries, no use recorded", min(base)),
                 (f"read {args.reads} entries, use recorded (every one due)", min(due)),
                 (f"read {args.reads} entries, use recorded (none due)", min(fresh))]

        t = time.perf_counter()
        writer.settle(samples, size)  # no ledger yet: this one walks
        rows.append((f"first settle of {args.entries} images (manifest + walk)",
                     time.perf_counter() - t))
        job = PixelStore(root, limit=10**15)
        t = time.perf_counter()
        job.settle(samples[: args.entries // 2] + samples[args.entries // 2:], size)
        rows.append((f"settle of {args.entries} images, under the limit (no walk)",
                     time.perf_counter() - t))
        del writer, job
        gc.collect()

        t = time.perf_counter()
        summary = cc.inspect(root)
        rows.append((f"inspect (walk) of {summary.entries} entries", time.perf_counter() - t))
        t = time.perf_counter()
        gone = cc.evict(root, summary.nbytes // 2)
        rows.append((f"evict {gone.entries} of {summary.entries} entries (to 45%)",
                     time.perf_counter() - t))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("| step | seconds | vs no use recorded |")
    print("|---|---:|---:|")
    for name, seconds in rows:
        ratio = f"{seconds / min(base):.2f}" if name.startswith("read") else ""
        print(f"| {name} | {seconds:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
