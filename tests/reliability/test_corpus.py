"""The bad-input corpus through the whole pipeline: scan, then a tiny two-phase training.

Every file of the corpus has an expected outcome (``tests/corpus/build.py``); the test
checks each one and that nothing crashes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.corpus.build import Corpus, build_corpus, corpus_entries
from tests.reliability.helpers import TINY, deny_reading, tree_digest
from tlgui.core.dataset import Dataset, scan
from tlgui.core.events import Event, Notice
from tlgui.core.imageio import decode_rgb
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.training import TrainResult, run_training


def _used(ds: Dataset, corpus: Corpus) -> set[str]:
    return {corpus.rel(s.path) for s in (*ds.train, *ds.validation, *ds.test)}


def _problems(ds: Dataset, corpus: Corpus) -> dict[str, str]:
    return {corpus.rel(p.path): p.reason for p in ds.problems}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Builds the corpus, scans it, changes two files, trains; keeps every stage's output."""
    base = tmp_path_factory.mktemp("corpus")
    corpus = build_corpus(base)
    with pytest.MonkeyPatch.context() as mp:
        deny_reading(mp, corpus.unreadable)
        scanned = scan(corpus.root)
        corpus.after_scan()
        before_training = tree_digest(corpus.root)
        events: list[Event] = []
        result = run_training(scanned, TINY, report=events.append,
                              cache=PixelCache(base / "cache"), run_root=base / "runs")
    return {"corpus": corpus, "scanned": scanned, "result": result, "events": events,
            "before_training": before_training, "cache": base / "cache"}


def test_every_corpus_entry_has_an_expectation(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path)
    assert corpus_entries(corpus.root) == set(corpus.expected)
    kinds = {e.outcome for e in corpus.expected.values()}
    assert kinds == {"used", "converted", "skipped", "dropped"}
    # The corpus is generated, deterministic and small.
    assert corpus_entries(build_corpus(tmp_path / "again").root) == set(corpus.expected)


def test_scan_outcome_of_each_file(pipeline: dict[str, object]) -> None:
    corpus: Corpus = pipeline["corpus"]  # type: ignore[assignment]
    ds: Dataset = pipeline["scanned"]  # type: ignore[assignment]
    used, problems = _used(ds, corpus), _problems(ds, corpus)
    for rel, exp in corpus.expected.items():
        if exp.outcome == "skipped":
            assert rel in problems, f"{exp.case}: {rel} not reported"
            assert problems[rel].startswith(exp.reason), (exp.case, problems[rel])
            assert rel not in used
        else:  # used, converted, and the files that only fail later
            assert rel in used, f"{exp.case}: {rel} not used by the scan ({problems.get(rel)})"
    assert set(problems) == set(corpus.by_outcome("skipped"))
    # The empty class is left out with a warning; the one-image class stays, warned.
    assert ds.class_names == ("alpha", "beta", "solo")
    text = "\n".join(ds.warnings)
    assert "'empty' has no usable images" in text
    assert "'solo' has only 1 image(s)" in text
    assert ds.counts()["solo"] == 1
    # The same image in two classes: both used, flagged as a label conflict.
    assert {corpus.rel(p) for group in ds.conflicts for p in group} == \
        {corpus.rel(p) for p in corpus.conflict}
    # The folder named x.jpg is not an image; the image inside it is.
    paths = {s.path for s in (*ds.train, *ds.validation)}
    assert corpus.folder_named_jpg not in paths
    assert corpus.folder_named_jpg not in {p.path for p in ds.problems}


def test_training_drops_late_failures_and_keeps_the_rest(pipeline: dict[str, object]) -> None:
    corpus: Corpus = pipeline["corpus"]  # type: ignore[assignment]
    result: TrainResult = pipeline["result"]  # type: ignore[assignment]
    assert not result.cancelled
    assert [h["phase"] for h in result.history] == [1, 2]
    assert result.run is not None
    assert (result.run.path / "model.keras").is_file()
    final = result.dataset
    problems = _problems(final, corpus)
    for rel, exp in corpus.by_outcome("dropped").items():
        assert rel in problems, f"{exp.case}: {rel} not reported"
        assert problems[rel].startswith(exp.reason), (exp.case, problems[rel])
    assert set(problems) == set(corpus.by_outcome("skipped", "dropped"))
    assert _used(final, corpus) == set(corpus.by_outcome("used", "converted"))
    # Each file dropped at decode was told to the user.
    notices = [e.message for e in pipeline["events"]  # type: ignore[attr-defined]
               if isinstance(e, Notice) and e.level == "warning"]
    for rel in corpus.by_outcome("dropped"):
        assert any(Path(rel).name in m for m in notices), rel
    # Training read the dataset and wrote nothing into it.
    assert tree_digest(corpus.root) == pipeline["before_training"]


def test_converted_files_become_8bit_rgb(pipeline: dict[str, object]) -> None:
    corpus: Corpus = pipeline["corpus"]  # type: ignore[assignment]
    converted = corpus.by_outcome("converted")
    assert len(converted) >= 6
    for rel in converted:
        path = corpus.root / rel
        with Image.open(path) as img:
            assert img.mode != "RGB", rel  # it really needed a conversion
        arr = decode_rgb(path)
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3, rel
        assert arr.shape[:2] == (40, 48), rel
    sixteen = decode_rgb(corpus.root / "alpha" / "sixteen_bit.png")
    assert sixteen.max() > 240 and sixteen.min() < 10  # scaled to 8 bits, not clipped


def test_exif_rotation_is_applied_before_resizing(pipeline: dict[str, object]) -> None:
    corpus: Corpus = pipeline["corpus"]  # type: ignore[assignment]
    ds: Dataset = pipeline["result"].dataset  # type: ignore[attr-defined]
    (sample,) = [s for s in (*ds.train, *ds.validation) if s.path == corpus.exif_rotated]
    # The cache training used holds the upright image: blue on top, red below.
    pixels = PixelCache(pipeline["cache"]).get(sample, 32)  # type: ignore[arg-type]
    assert pixels.shape == (32, 32, 3)
    top, bottom = pixels[:12].reshape(-1, 3).mean(0), pixels[20:].reshape(-1, 3).mean(0)
    assert top[2] > 200 and top[0] < 60, top
    assert bottom[0] > 200 and bottom[2] < 60, bottom
    assert decode_rgb(corpus.exif_rotated).shape[:2] == (80, 40)
