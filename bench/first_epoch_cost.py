"""Where a small set's time goes before tlgui's first epoch, and what a change would save.

On a small set tlgui reaches the recipe's accuracy in its first epoch, so its time to that
accuracy is almost all fixed cost: the scan, building the model, decoding the photos into
the pixel cache and one pass of the frozen backbone over the training and validation
photos. This script measures each step in one process, then times the backbone pass under
alternatives, side by side in the same run, each on a cold decode cache:

- ``decode first`` (what training does): decode every photo, then run the backbone;
- ``decode while computing``: no decoding pass; the backbone's reader decodes ahead;
- ``batch 32``: the feature pass with 32 photos a batch instead of 16;
- ``bfloat16``: the backbone under Keras' ``mixed_bfloat16`` policy;
- ``XLA``: the feature network compiled with ``jit_compile=True``.

Run from the repository root (``TLGUI_CACHE_DIR`` is set to a temporary folder)::

    .venv/bin/python bench/first_epoch_cost.py DATA --weights-dir ../shared/weights

where DATA is a folder of class folders (or train/ and validation/), such as a subset
written by ``bench/accuracy_table.py`` under ``--work/sets/seed0/n10``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _timed(what: str, fn: Any, rows: list[tuple[str, float]]) -> Any:
    t = time.monotonic()
    out = fn()
    rows.append((what, time.monotonic() - t))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--weights-dir", required=True)
    p.add_argument("--xla", action="store_true", help="also time XLA (slow: minutes)")
    args = p.parse_args(argv)
    cache_dir = Path(tempfile.mkdtemp(prefix="tlgui-first-epoch-"))
    os.environ["TLGUI_CACHE_DIR"] = str(cache_dir)

    from tlgui.core import frozen_features as ff
    from tlgui.core.config import TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.model import ClassifierModel
    from tlgui.core.pixel_cache import PixelCache, fill_cache
    from tlgui.core.precision import dtype_policy
    from tlgui.core.training import _phase2_cut, _set_phase2_trainable

    steps: list[tuple[str, float]] = []
    cancel = threading.Event()
    dataset = _timed("scan", lambda: scan(args.data), steps)
    samples = dataset.train + dataset.validation
    config = TrainConfig(weights_dir=args.weights_dir)

    def build(policy: str = "float32") -> Any:
        with dtype_policy(policy):
            cm = ClassifierModel.build(config, dataset.class_names)
        _set_phase2_trainable(cm, config, None)
        return cm

    cm = _timed("build the model", build, steps)
    cut = _phase2_cut(cm)

    def cold() -> PixelCache:
        shutil.rmtree(cache_dir, ignore_errors=True)
        cache_dir.mkdir()
        return PixelCache()

    def features(model: Any, cache: PixelCache, batch: int = ff.FEATURE_BATCH,
                 net: Any = None) -> Any:
        images = ff.Images.of_samples(samples, model.image_size, cache, cancel)
        return ff.extract(model, images, [0], cut, batch, lambda _e: None, cancel, net=net)

    cache = cold()
    _timed(f"decode {len(samples)} photos", lambda: fill_cache(
        samples, cm.image_size, cache, lambda _e: None, cancel), steps)
    _timed("backbone pass", lambda: features(cm, cache), steps)
    print(f"{args.data}: {len(dataset.train)} training + {len(dataset.validation)} "
          f"validation photos, {cm.backbone_name} at {cm.image_size} px, cut {cut}\n")
    print("| step | seconds |\n|---|---|")
    for what, s in steps:
        print(f"| {what} | {s:.2f} |")

    variants: list[tuple[str, float]] = []

    def decode_first(model: Any = cm, batch: int = ff.FEATURE_BATCH, net: Any = None) -> None:
        c = cold()
        fill_cache(samples, model.image_size, c, lambda _e: None, cancel)
        features(model, c, batch, net)

    bf16 = build("mixed_bfloat16")
    runs: list[tuple[str, Any]] = [
        ("decode first, then the backbone (training's order)", decode_first),
        ("decode while computing (no decoding pass)", lambda: features(cm, cold())),
        ("decode first, batch 32", lambda: decode_first(batch=32)),
        ("decode first, bfloat16 backbone", lambda: decode_first(bf16)),
    ]
    if args.xla:
        net = ff.feature_model(cm.backbone, cut)
        net.compile(jit_compile=True)
        runs.append(("decode first, XLA feature network", lambda: decode_first(net=net)))
    for name, fn in runs:
        _timed(name, fn, variants)
    base = variants[0][1]
    print("\n| decoding and backbone pass | seconds | ratio to training's order |\n|---|---|---|")
    for name, s in variants:
        print(f"| {name} | {s:.2f} | {s / base:.2f} |")
    shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
