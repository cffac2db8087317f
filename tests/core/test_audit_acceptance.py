"""Issue 14's acceptance on real photos: moved photos and re-encoded copies are found.

100 photos of each flower class; 4 of each moved into the next class's folder; 5
re-encoded copies (JPEG quality 70, 90% size) beside their originals. At least 16 of the
20 moved photos must be among the 50 highest ``likely_mislabeled`` rows with their true
class suggested, and at least 4 of the 5 copies reported with their original.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import SHARED_DATA
from tests.reliability.helpers import tree_digest
from tlgui.core.audit import audit_dataset
from tlgui.core.config import TrainConfig
from tlgui.core.dataset import scan

FLOWERS = SHARED_DATA / "flower_photos"
PER_CLASS, MOVED, COPIES = 100, 4, 5


@pytest.fixture
def flower_photos() -> Path:
    if not FLOWERS.is_dir():
        message = f"flower_photos not found at {FLOWERS}"
        if os.environ.get("TLGUI_REQUIRE_REAL_WEIGHTS"):
            pytest.fail(message)
        pytest.skip(message)
    return FLOWERS


def _build(src: Path, dest: Path) -> tuple[dict[Path, str], dict[Path, Path]]:
    """The altered copy of 100 photos per class: (moved photo -> true class,
    re-encoded copy -> its original)."""
    classes = sorted(p.name for p in src.iterdir() if p.is_dir())
    moved: dict[Path, str] = {}
    copies: dict[Path, Path] = {}
    for ci, name in enumerate(classes):
        files = sorted(p for p in (src / name).iterdir() if p.suffix.lower() == ".jpg")
        chosen = random.Random(f"audit-acceptance:{name}").sample(files, PER_CLASS)
        (dest / name).mkdir(parents=True, exist_ok=True)
        nxt = classes[(ci + 1) % len(classes)]
        (dest / nxt).mkdir(parents=True, exist_ok=True)
        for k, f in enumerate(chosen):
            if k < MOVED:
                target = dest / nxt / f.name
                moved[target] = name
            else:
                target = dest / name / f.name
            shutil.copy2(f, target)
        # One re-encoded copy per class, of a photo that stays in place.
        original = dest / name / chosen[MOVED].name
        with Image.open(original) as im:
            small = im.convert("RGB").resize((int(im.width * 0.9), int(im.height * 0.9)))
        copy = original.with_name(original.stem + "_copy.jpg")
        small.save(copy, "JPEG", quality=70)
        copies[copy] = original
    assert len(moved) == MOVED * len(classes) and len(copies) == COPIES
    return moved, copies


@pytest.mark.real_weights
def test_moved_photos_and_copies_are_found(flower_photos: Path, real_weights_dir: Path,
                                           tmp_path: Path) -> None:
    root = tmp_path / "flowers"
    moved, copies = _build(flower_photos, root)
    before = tree_digest(root)
    t0 = time.monotonic()
    result = audit_dataset(scan(root), TrainConfig(weights_dir=str(real_weights_dir)))
    seconds = time.monotonic() - t0
    assert tree_digest(root) == before  # the audit never writes inside the dataset

    top = result.of("likely_mislabeled")[:50]
    found = [f for f in top if f.path in moved and f.suggested_class == moved[f.path]]
    pairs = {frozenset((f.path, f.related_path)) for f in result.of("near_duplicate")}
    copies_found = [c for c, o in copies.items() if frozenset((c, o)) in pairs]
    print(f"\naudit of {len(result.paths)} images in {seconds:.1f} s {result.seconds}; "
          f"moved found in the top 50: {len(found)}/{len(moved)}; copies found: "
          f"{len(copies_found)}/{len(copies)}; out-of-fold accuracy {result.accuracy:.3f}")
    assert len(found) >= 16
    assert len(copies_found) >= 4
    # Every listed finding names a file of the dataset, and the CSV order holds.
    assert all(f.path.is_relative_to(root) for f in result.findings)
    scores = [f.score for f in result.findings]
    assert scores == sorted(scores, reverse=True)
