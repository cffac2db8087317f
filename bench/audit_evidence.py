"""The measurements behind the audit's choices (ADR 005), on flower_photos.

1. Label errors: 24 draws of the issue's acceptance in feature space. Each draw takes 100
   photos per class, files 4 of each under the next class and counts the moved photos
   among the 50 highest likely_mislabeled rows with their true class suggested. Compared:
   160 and 224 px features; the out-of-fold head alone and head + neighbour votes; the
   mirror view added (train on both views, average the predictions).
2. Near-duplicates: 150 photos re-encoded (quality 70, 90% size), strongly re-encoded
   (quality 50, 60% size) and cropped (5% and 10% off each side): the share of copies
   found, and how many pairs of the untouched dataset pass the same rule.

Run from the repository root (about two feature passes over 3,670 images per size)::

    .venv/bin/python bench/audit_evidence.py --weights-dir ../shared/weights
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from _flowers import setup

DRAWS, PER_CLASS, MOVED = 24, 100, 4


def draws(features: list[np.ndarray], labels: np.ndarray, votes: bool) -> list[int]:
    from tlgui.core.audit import HEAD_INPUT_SCALE
    from tlgui.core.confident_learning import find_label_issues
    from tlgui.core.linear_head import HeadSettings, out_of_fold_probabilities
    from tlgui.core.similarity import neighbour_votes

    k = int(labels.max()) + 1
    found = []
    for seed in range(DRAWS):
        rng = np.random.default_rng(seed)
        sel = np.concatenate([rng.choice(np.flatnonzero(labels == c), PER_CLASS, replace=False)
                              for c in range(k)])
        true = labels[sel]
        given = true.copy()
        moved = np.concatenate([np.flatnonzero(true == c)[:MOVED] for c in range(k)])
        given[moved] = (true[moved] + 1) % k
        views = [f[sel] * HEAD_INPUT_SCALE for f in features]
        probs = out_of_fold_probabilities(views, given, k, settings=HeadSettings(seed=seed))
        if votes:
            unit = features[0][sel]
            sim = unit @ unit.T
            np.fill_diagonal(sim, -np.inf)
            near = np.argsort(-sim, axis=1)[:, :16]
            probs = 0.5 * probs + 0.5 * neighbour_votes(near, given, np.arange(len(sel)), k)
        issues = find_label_issues(probs, given)
        rows = np.arange(len(sel))
        candidates = np.flatnonzero(probs.argmax(axis=1) != given)
        score = 0.5 * (1 - probs[rows, given]) + 0.5 * np.isin(rows, issues.flagged)
        top = set(candidates[np.argsort(-score[candidates], kind="stable")][:50].tolist())
        found.append(sum(int(i in top and issues.suggested[i] == true[i]) for i in moved))
    return found


def copies_table(samples: list, fp_size: int, weights_dir: str, work: Path) -> None:
    from PIL import Image

    from tlgui.core.audit import AuditSettings
    from tlgui.core.audit_features import compute_features
    from tlgui.core.config import TrainConfig
    from tlgui.core.dataset import Sample
    from tlgui.core.events import ignore
    from tlgui.core.pixel_cache import PixelCache
    from tlgui.core.similarity import scan_pairs

    rng = np.random.default_rng(1)
    picked = [samples[i] for i in rng.choice(len(samples), 150, replace=False)]
    kinds = {"q70, 90%": (0.9, 0, 70), "q50, 60%": (0.6, 0, 50), "crop 5%": (1.0, 0.05, 70),
             "crop 10%": (1.0, 0.1, 70)}
    made: list[Sample] = []
    for i, s in enumerate(picked):
        with Image.open(s.path) as im:
            im = im.convert("RGB")
            for name, (scale, crop, quality) in kinds.items():
                w, h = im.size
                v = im.crop((int(w * crop), int(h * crop), int(w * (1 - crop)),
                             int(h * (1 - crop)))).resize((int(w * scale), int(h * scale)))
                target = work / f"{i:03d}_{name.replace(' ', '').replace(',', '_')}.jpg"
                v.save(target, "JPEG", quality=quality)
                st = target.stat()
                made.append(Sample(target, 0, st.st_size, st.st_mtime_ns))
    cfg = TrainConfig(weights_dir=weights_dir)
    everything = [*samples, *made]
    fp = compute_features(everything, ("a", "b"), cfg, fp_size, PixelCache(), ignore,
                          threading.Event())
    n = len(samples)
    settings = AuditSettings()
    index = {s.path: i for i, s in enumerate(samples)}
    print(f"\nNear-duplicates at {fp_size} px (thumbnails >= {settings.duplicate_thumbnail}, "
          f"features >= {settings.duplicate_feature}), one kind of copy at a time:")
    print("| Copy | Reported with its original |\n|---|---|")
    for k, name in enumerate(kinds):
        # The dataset plus this kind's copies only: each copy has one original to find.
        rows = np.concatenate([np.arange(n), n + np.arange(len(picked)) * len(kinds) + k])
        scan = scan_pairs(fp.features[rows], [t[rows] for t in fp.thumbnails],
                          np.zeros(len(rows), np.int64), 1, settings.duplicate_thumbnail,
                          settings.duplicate_feature)
        hit = 0
        for i, s in enumerate(picked):
            copy, original = n + i, index[s.path]
            hit += int(scan.twin[copy] == original or scan.twin[original] == copy)
        print(f"| {name} | {hit}/{len(picked)} |")
    scan = scan_pairs(fp.features[:n], [t[:n] for t in fp.thumbnails],
                      np.zeros(n, np.int64), 1, settings.duplicate_thumbnail,
                      settings.duplicate_feature)
    inside = {(min(i, int(j)), max(i, int(j))) for i, j in enumerate(scan.twin) if j >= 0}
    print(f"Pairs among the {n} untouched photos that pass the rule: {len(inside)}")


def main() -> None:
    args, work = setup(__doc__.splitlines()[0], "tlgui-audit-evidence-",
                       {"--copies-only": "skip the label-error draws"})
    from tlgui.core import frozen_features as ff
    from tlgui.core.audit_features import compute_features
    from tlgui.core.config import TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.events import ignore
    from tlgui.core.model import ClassifierModel
    from tlgui.core.pixel_cache import PixelCache

    ds = scan(args.data)
    samples = [*ds.train, *ds.validation]
    cfg = TrainConfig(weights_dir=args.weights_dir)
    if not args.copies_only:
        print(f"Moved photos found among the 50 highest rows, {DRAWS} draws of "
              f"{PER_CLASS} per class with {MOVED} per class moved (of 20):")
        print("| Features | Probabilities | Mean | Min | Draws under 16 |\n|---|---|---|---|---|")
    for size in () if args.copies_only else (160, 224):
        fp = compute_features(samples, ds.class_names, cfg, size, PixelCache(), ignore,
                              threading.Event())
        labels = np.array([s.label for s in fp.samples])
        for votes in (False, True):
            got = draws([fp.features], labels, votes)
            print(f"| {size} px | {'head + votes' if votes else 'head'} | "
                  f"{np.mean(got):.1f} | {min(got)} | {sum(g < 16 for g in got)} |",
                  flush=True)
        # The mirror view: a second pass over the flipped images.
        cm = ClassifierModel.build(cfg.replace(image_size=size), ds.class_names)
        images = ff.Images.of_samples(list(fp.samples), size, PixelCache())
        mirror = ff.extract(cm, images, [1], None, ff.FEATURE_BATCH, ignore,
                            threading.Event()).pooled
        assert mirror is not None
        unit = mirror[0] / np.linalg.norm(mirror[0], axis=1, keepdims=True)
        got = draws([fp.features, unit.astype(np.float32)], labels, True)
        print(f"| {size} px + mirror | head + votes | {np.mean(got):.1f} | {min(got)} | "
              f"{sum(g < 16 for g in got)} |", flush=True)
    copies = work / "copies"
    copies.mkdir()
    copies_table(samples, 224, args.weights_dir, copies)


if __name__ == "__main__":
    main()
