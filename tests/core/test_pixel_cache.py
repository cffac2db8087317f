"""Decode once: the cache, its keys, its integrity checks, and files changing under it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tests.imagegen import make_dataset
from tlgui.core.dataset import scan
from tlgui.core.pixel_cache import PixelCache, load_pixels


def test_second_load_decodes_nothing(tmp_path: Path) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=10))
    cache = PixelCache(tmp_path / "cache")
    x1, _kept1, bad1 = load_pixels(ds.train, 40, cache)
    assert cache.stats.decoded == len(ds.train) and cache.stats.hits == 0
    again = PixelCache(tmp_path / "cache")  # a second run: a new process would do this
    x2, _kept2, bad2 = load_pixels(ds.train, 40, again)
    assert again.stats.decoded == 0 and again.stats.hits == len(ds.train)
    assert np.array_equal(x1, x2) and x1.shape == (len(ds.train), 40, 40, 3)
    assert not bad1 and not bad2
    # The cache lives outside the dataset.
    assert not any(p.suffix == ".bin" for p in (tmp_path / "d").rglob("*"))
    # Another size is another key.
    load_pixels(ds.train[:3], 32, again)
    assert again.stats.decoded == 3


def test_corrupt_entry_is_detected_and_redecoded(tmp_path: Path) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=10))
    cache = PixelCache(tmp_path / "cache")
    x1, _, _ = load_pixels(ds.train[:4], 40, cache)
    entries = sorted((tmp_path / "cache").rglob("*.bin"))
    assert len(entries) == 4
    data = bytearray(entries[0].read_bytes())
    data[-10] ^= 0xFF
    entries[0].write_bytes(bytes(data))
    entries[1].write_bytes(entries[1].read_bytes()[:100])  # a half-written entry
    fresh = PixelCache(tmp_path / "cache")
    x2, _, _ = load_pixels(ds.train[:4], 40, fresh)
    assert fresh.stats.corrupt == 2 and fresh.stats.decoded == 2
    assert np.array_equal(x1, x2)


def test_changed_deleted_and_garbage_files_become_problems(tmp_path: Path) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=10))
    samples = list(ds.train[:3])
    samples[0].path.unlink()
    samples[1].path.write_bytes(b"garbage" * 100)
    os.utime(samples[2].path, ns=(1, 1))  # touched: the old cache key no longer applies
    x, kept, bad = load_pixels(samples, 40, PixelCache(tmp_path / "cache"))
    reasons = {p.path.name: p.reason for p in bad}
    assert reasons[samples[0].path.name] == "file was deleted after the scan"
    assert "changed after the scan" in reasons[samples[1].path.name]
    assert "changed after the scan" in reasons[samples[2].path.name]
    assert len(x) == 0 and len(kept) == 0


def test_fill_cache_then_stream_in_chunks(tmp_path: Path) -> None:
    """Training decodes into the cache only, then reads it back a chunk at a time."""
    from tlgui.core.pixel_cache import fill_cache, iter_pixels

    ds = scan(make_dataset(tmp_path / "d", per_class=10))
    samples = list(ds.train[:7])
    samples[3].path.write_bytes(b"garbage" * 100)  # changed since the scan
    cache = PixelCache(tmp_path / "cache")
    bad = fill_cache(samples, 40, cache)
    assert [p.path for p in bad] == [samples[3].path] and cache.stats.decoded == 6
    again = PixelCache(tmp_path / "cache")
    assert len(fill_cache(samples, 40, again)) == 1 and again.stats.decoded == 0
    assert again.stats.hits == 0  # present entries are not even read
    chunks = list(iter_pixels(samples, 40, again, chunk=3))
    assert [c.indices.tolist() for c in chunks] == [[0, 1, 2], [4, 5], [6]]
    assert [len(c.problems) for c in chunks] == [0, 1, 0]
    streamed = np.concatenate([c.pixels for c in chunks])
    x, kept, _ = load_pixels(samples, 40, PixelCache(tmp_path / "cache"))
    assert kept.tolist() == [0, 1, 2, 4, 5, 6] and np.array_equal(streamed, x)
