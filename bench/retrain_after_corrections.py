"""Decode and frozen-feature time of a first run against a retrain after corrections.

On a linked copy of the data (hard links: nothing is copied or changed in the original),
with a fresh pixel cache, in one process:

1. **first run**: ``run_training`` on the dataset (phase 1 only, one epoch: the decode
   and the frozen pass are what is measured, and they are the same for any run length);
2. **after corrections**: 20 images relabelled, 10 excluded and 50 new images added
   (re-encoded copies, new files) through the correction list, nothing moved;
3. **after "Apply to folders"**: the same corrections carried out on the folders
   (moves and copies), then the folder scanned again and trained on.

For each: seconds in decoding (filling the cache), images decoded, and seconds in the
frozen pass (first to last ``features`` progress event). Prints a Markdown table::

    .venv/bin/python bench/retrain_after_corrections.py --weights-dir ../shared/weights
"""

from __future__ import annotations

import os
import shutil
import time

from _flowers import setup


def main() -> None:
    args, work = setup(__doc__.splitlines()[0], "tlgui-retrain-")
    from PIL import Image

    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.core.corrections import apply_corrections, load_corrections, save_corrections
    from tlgui.core.dataset import scan
    from tlgui.core.events import Event, StageProgress
    from tlgui.core.folder_moves import apply_plan, plan_apply
    from tlgui.core.pixel_cache import PixelCache
    from tlgui.core.training import run_training

    root = work / "photos"
    shutil.copytree(args.data, root, copy_function=os.link)
    config = TrainConfig(weights_dir=args.weights_dir, phase1=PhaseConfig(epochs=1),
                         phase2=PhaseConfig(epochs=0))
    cache = PixelCache()

    def measure(ds: object) -> tuple[float, int, float]:
        stamps: list[float] = []

        def report(e: Event) -> None:
            if isinstance(e, StageProgress) and e.stage == "features":
                stamps.append(time.monotonic())

        decoded = cache.stats.decoded
        result = run_training(ds, config, report, cache=cache, write_run=False)  # type: ignore[arg-type]
        return result.decode_seconds, cache.stats.decoded - decoded, stamps[-1] - stamps[0]

    rows = []
    ds = scan(root)
    rows.append(("first run (empty cache)", len(ds.train) + len(ds.validation), *measure(ds)))
    print(rows[-1], flush=True)

    outside = work / "new"
    outside.mkdir()
    files = sorted(s.path for s in ds.train)
    new = []
    for i, f in enumerate(files[:50]):
        with Image.open(f) as im:
            target = outside / f"new_{i:02d}.jpg"
            im.convert("RGB").save(target, "JPEG", quality=85)
            new.append(target)
    c = load_corrections(root)
    names = ds.class_names
    for f in files[100:120]:
        c.relabel(f, names[(names.index(f.parent.name) + 1) % len(names)])
    for f in files[200:210]:
        c.exclude(f)
    c.add_images(new, names[0])
    save_corrections(c)
    fixed = apply_corrections(ds, c)
    rows.append(("after corrections (20 relabelled, 10 excluded, 50 added)",
                 len(fixed.train) + len(fixed.validation), *measure(fixed)))
    print(rows[-1], flush=True)

    apply_plan(plan_apply(ds, c), cache=cache)
    again = scan(root)
    rows.append(("after Apply to folders (the same, moved and copied)",
                 len(again.train) + len(again.validation), *measure(again)))
    print(rows[-1], flush=True)

    print("\n| Run | Images | Decode | Images decoded | Frozen pass (all images) |")
    print("|---|---|---|---|---|")
    for name, n, dec_s, dec_n, feat_s in rows:
        print(f"| {name} | {n} | {dec_s:.1f} s | {dec_n} | {feat_s:.1f} s |")
    print(f"\nwork folder {work}")


if __name__ == "__main__":
    main()
