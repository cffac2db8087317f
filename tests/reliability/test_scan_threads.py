"""The scan's speed-ups change nothing it finds: threads and whole reads of small files.

The scan looks at files on several threads and hashes small files while their bytes are
in memory for the header probe. On the bad-input and hostile corpora (pipes, links out,
unreadable and undecodable names, broken headers, duplicates across classes) it must
give exactly what one thread reading headers only gives: the same samples in the same
order, the same problems with the same reasons, the same conflicts and warnings.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.corpus.build import build_corpus
from tests.corpus.hostile import build_hostile
from tests.imagegen import make_dataset
from tests.reliability.helpers import deny_entering, deny_reading
from tlgui.core import dataset as dataset_module
from tlgui.core.dataset import Dataset, scan
from tlgui.core.errors import Cancelled
from tlgui.core.events import Event, StageProgress

pytestmark = pytest.mark.timeout(120, method="signal")


def _plain_scan(root: Path, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    """The scan as it was: one thread, headers only, every duplicate hashed apart."""
    with monkeypatch.context() as mp:
        mp.setattr(dataset_module, "SCAN_THREADS", 1)
        mp.setattr(dataset_module, "LOOK_AHEAD", 1)
        mp.setattr(dataset_module, "WHOLE_READ_BYTES", 0)
        return scan(root)


def _same(a: Dataset, b: Dataset) -> None:
    assert a.class_names == b.class_names
    assert a.train == b.train and a.validation == b.validation and a.test == b.test
    assert a.problems == b.problems
    assert a.conflicts == b.conflicts
    assert a.warnings == b.warnings


def test_bad_input_corpus_scans_the_same(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = build_corpus(tmp_path)
    deny_reading(monkeypatch, corpus.unreadable)
    fast = scan(corpus.root)
    _same(fast, _plain_scan(corpus.root, monkeypatch))
    # The corpus holds a conflict (the same bytes in two classes): found from the
    # digests taken during the probe, as from reading the files again.
    assert fast.conflicts and set(corpus.conflict) <= set(fast.conflicts[0])
    assert fast.problems


def test_hostile_corpus_scans_the_same(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    h = build_hostile(tmp_path)
    deny_entering(monkeypatch, *h.locked)
    _same(scan(h.root), _plain_scan(h.root, monkeypatch))


def test_a_duplicate_larger_than_a_whole_read_is_still_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_dataset(tmp_path / "d", classes=("red", "green"), per_class=12)
    (root / "green" / "copy.jpg").write_bytes((root / "red" / "img_003.jpg").read_bytes())
    # Small files are hashed during the probe; bigger ones by the duplicate check.
    monkeypatch.setattr(dataset_module, "WHOLE_READ_BYTES", 16)
    big = scan(root)
    monkeypatch.undo()
    small = scan(root)
    assert big.conflicts == small.conflicts == (
        (root / "green" / "copy.jpg", root / "red" / "img_003.jpg"),)


def test_cancel_stops_a_threaded_scan(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", classes=("red", "green"), per_class=150)
    cancel = threading.Event()

    def report(event: Event) -> None:
        if isinstance(event, StageProgress) and event.done:
            cancel.set()

    with pytest.raises(Cancelled):
        scan(root, report=report, cancel=cancel)
