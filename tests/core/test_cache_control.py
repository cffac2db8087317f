"""The cache the user controls: LRU eviction under a limit, orphans, clear, hostile files,
and ``tlgui cache`` on the command line."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.imagegen import make_dataset
from tlgui.core import cache_control as cc
from tlgui.core import cache_index as idx
from tlgui.core.dataset import Sample, scan
from tlgui.core.errors import ConfigError
from tlgui.core.pixel_cache import PixelCache, fill_cache, iter_pixels
from tlgui.core.pixel_store import PixelStore

SIZE = 8
ENTRY = 16 + SIZE * SIZE * 3  # header and pixels


def _fake(folder: Path, n: int, store: PixelStore) -> list[Sample]:
    """``n`` entries as if images under ``folder`` were cached (no image is decoded)."""
    (folder / "c").mkdir(parents=True, exist_ok=True)
    samples = [Sample(folder / "c" / f"{i}.png", 0, 100 + i, 1) for i in range(n)]
    for i, s in enumerate(samples):
        store.write(s, SIZE, np.full((SIZE, SIZE, 3), i, dtype=np.uint8))
    store.settle(samples, SIZE)
    return samples


def _age(store: PixelStore, samples: list[Sample], hours_ago: list[float]) -> None:
    now = time.time()
    for s, h in zip(samples, hours_ago, strict=True):
        path = store._entry(store.key(s, SIZE), SIZE)
        os.utime(path, (now - h * 3600, now - h * 3600))


def _present(store: PixelStore, samples: list[Sample]) -> list[bool]:
    return [store._entry(store.key(s, SIZE), SIZE).is_file() for s in samples]


def test_eviction_removes_the_entries_used_longest_ago(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    writer = PixelStore(root, limit=10**9)
    samples = _fake(tmp_path / "ds", 5, writer)
    del writer
    gc.collect()  # its entries are no longer some live job's
    store = PixelStore(root, limit=10**9)
    _age(store, samples, [5, 4, 3, 2, 1])  # sample 0 written first, 4 last
    assert store.read(samples[0], SIZE) is not None  # a read is a use: 0 is now the newest
    del store
    gc.collect()
    gone = cc.evict(root, 3 * ENTRY)  # 90% of the limit holds two entries
    assert gone.entries == 3 and gone.nbytes == 3 * ENTRY
    assert _present(PixelStore(root), samples) == [True, False, False, False, True]
    assert idx.read_ledger(root) == idx.Ledger(2 * ENTRY, pytest.approx(time.time(), abs=60))


def test_lookup_records_a_use_without_reading(tmp_path: Path) -> None:
    store = PixelStore(tmp_path / "cache", limit=10**9)
    samples = _fake(tmp_path / "ds", 2, store)
    _age(store, samples, [2, 1])
    assert store.contains(samples[0], SIZE)
    path = store._entry(store.key(samples[0], SIZE), SIZE)
    assert time.time() - path.stat().st_mtime < 60


def _images(root: Path, classes: tuple[str, ...], per_class: int) -> list[Sample]:
    ds = scan(make_dataset(root, classes=classes, per_class=per_class))
    return list(ds.train + ds.validation)


def test_the_limit_holds_after_a_fill_and_a_running_job_keeps_its_entries(
        tmp_path: Path) -> None:
    first = _images(tmp_path / "a", ("red", "green", "blue"), 3)
    second = _images(tmp_path / "b", ("red", "green"), 3)
    root = tmp_path / "cache"
    entry = 16 + 16 * 16 * 3
    old = PixelCache(root, limit=7 * entry)
    fill_cache(first, 16, old)
    assert len(list(idx.walk(root))) == len(first) == 9  # over the limit, but in use
    del old
    gc.collect()
    job = PixelCache(root, limit=7 * entry)
    fill_cache(second, 16, job)
    assert sum(e.nbytes for e in idx.walk(root)) <= 7 * entry
    # The running job's entries all stayed; the other dataset's made room.
    assert all(job.contains(s, 16) for s in second)
    assert job.stats.decoded == len(second)


def test_a_job_whose_entries_were_evicted_decodes_them_again(tmp_path: Path) -> None:
    samples = _images(tmp_path / "a", ("red", "green"), 3)
    cache = PixelCache(tmp_path / "cache", limit=10**9)
    fill_cache(samples, 16, cache)
    first = np.concatenate([c.pixels for c in iter_pixels(samples, 16, cache, chunk=4)])
    cc.clear(tmp_path / "cache")  # by another process, say, while this job runs
    again = np.concatenate([c.pixels for c in iter_pixels(samples, 16, cache, chunk=4)])
    assert np.array_equal(first, again) and len(first) == len(samples)
    assert cache.stats.decoded == 2 * len(samples)


def test_a_job_far_under_the_limit_does_not_walk(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = PixelStore(tmp_path / "cache", limit=10**9)
    _fake(tmp_path / "ds", 3, store)  # no ledger yet: this one walks and writes it
    assert idx.read_ledger(tmp_path / "cache") == idx.Ledger(3 * ENTRY, pytest.approx(
        time.time(), abs=60))
    walks: list[Path] = []
    real = idx.walk
    monkeypatch.setattr(idx, "walk", lambda root, *a, **k: walks.append(root) or real(
        root, *a, **k))
    _fake(tmp_path / "ds2", 2, store)
    assert walks == []
    assert idx.read_ledger(tmp_path / "cache").nbytes == 5 * ENTRY  # type: ignore[union-attr]
    store.limit = 4 * ENTRY
    _fake(tmp_path / "ds3", 1, store)
    assert walks == [tmp_path / "cache"]


def test_prune_removes_the_entries_of_deleted_datasets_only(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    store = PixelStore(root, limit=10**9)
    kept = _fake(tmp_path / "kept", 3, store)
    lost = _fake(tmp_path / "lost", 2, store)
    summary = cc.inspect(root)
    assert {(d.folder, d.entries, d.exists) for d in summary.datasets} == {
        (str(tmp_path / "kept" / "c"), 3, True), (str(tmp_path / "lost" / "c"), 2, True)}
    (tmp_path / "lost" / "c").rmdir()
    summary = cc.inspect(root)
    assert [d.exists for d in summary.datasets if "lost" in d.folder] == [False]
    removed = cc.prune(root, limit=10**9)
    assert removed.entries == 2 and removed.datasets == [str(tmp_path / "lost" / "c")]
    assert _present(store, kept) == [True] * 3 and _present(store, lost) == [False] * 2
    assert [d.folder for d in cc.inspect(root).datasets] == [str(tmp_path / "kept" / "c")]


def _hostile(root: Path, outside: Path) -> dict[str, Path]:
    """Things tlgui does not make, planted in the cache under entry-like names."""
    outside.mkdir()
    target = outside / "precious.bin"
    target.write_bytes(b"x" * 5000)
    os.utime(target, (1, 1))
    sub = root / str(SIZE) / "ab"
    sub.mkdir(parents=True, exist_ok=True)
    planted = {"link": sub / ("ab" + "0" * 38 + ".bin"), "fifo": sub / ("ab" + "1" * 38 + ".bin"),
               "note": root / "notes.txt", "size_link": root / "99",
               "dir": sub / ("ab" + "2" * 38 + ".bin")}
    planted["link"].symlink_to(target)
    os.mkfifo(planted["fifo"])
    planted["note"].write_text("mine")
    planted["size_link"].symlink_to(outside, target_is_directory=True)
    planted["dir"].mkdir()
    (outside / ("cd" + "3" * 38 + ".bin")).write_bytes(b"y" * 100)
    return planted


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_clear_removes_only_what_tlgui_made_and_follows_no_link(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    store = PixelStore(root, limit=10**9)
    samples = _fake(tmp_path / "ds", 4, store)
    planted = _hostile(root, tmp_path / "outside")
    removed = cc.clear(root)
    assert removed.entries == 4 and removed.nbytes == 4 * ENTRY
    assert removed.strays == 5  # link, pipe, folder under entry names; notes.txt; "99"
    assert not any(_present(store, samples))
    for p in planted.values():
        assert os.path.lexists(p), p
    assert (tmp_path / "outside" / "precious.bin").stat().st_size == 5000
    assert len(list((tmp_path / "outside").iterdir())) == 2
    assert not (root / idx.MANIFESTS).exists() and not (root / idx.LEDGER).exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_eviction_and_reads_leave_planted_links_and_pipes_alone(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    store = PixelStore(root, limit=10**9)
    _fake(tmp_path / "ds", 3, store)
    planted = _hostile(root, tmp_path / "outside")
    del store
    gc.collect()
    summary = cc.inspect(root)
    assert summary.entries == 3 and summary.nbytes == 3 * ENTRY
    gone = cc.evict(root, 0)
    assert gone.entries == 3
    assert all(os.path.lexists(p) for p in planted.values())
    target = tmp_path / "outside" / "precious.bin"
    assert target.stat().st_mtime == 1 and target.stat().st_size == 5000
    # A lookup or a read of an entry that is a link neither follows it nor touches it.
    fake = Sample(tmp_path / "x.png", 0, 1, 1)
    store = PixelStore(root)
    link = store._entry(store.key(fake, SIZE), SIZE)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    assert not store.contains(fake, SIZE) and store.read(fake, SIZE) is None
    assert target.stat().st_mtime == 1


def test_sizes_are_read_and_written_for_people() -> None:
    assert cc.parse_size("20GB") == 20 * 10**9
    assert cc.parse_size(" 1.5 tb ") == 1_500_000_000_000
    assert cc.parse_size("512MiB") == 512 * 2**20
    assert cc.parse_size("2000000") == 2_000_000 and cc.parse_size("0") == 0
    with pytest.raises(ConfigError, match="no unit: write it like 20GB or 20MB"):
        cc.parse_size("20")
    for bad in ("", "GB", "-1GB", "5 parsecs", "1e3"):
        with pytest.raises(ConfigError):
            cc.parse_size(bad)
    assert cc.format_size(7_680_000_000) == "7.7 GB"
    assert cc.format_size(150 * 10**9) == "150 GB"
    assert cc.format_size(12) == "12 bytes"


def test_the_default_limit_follows_the_disk(tmp_path: Path, isolated_dirs: Path) -> None:
    limit = cc.default_limit(tmp_path / "not" / "made")
    assert cc.DEFAULT_MIN <= limit <= cc.DEFAULT_MAX
    assert cc.saved_limit() is None and cc.effective_limit(tmp_path) == cc.default_limit(
        tmp_path)
    cc.save_limit(3 * 10**9)
    assert cc.saved_limit() == cc.effective_limit() == 3 * 10**9
    cc.save_limit(None)
    assert cc.saved_limit() is None


def test_cli_cache_show_limit_prune_and_clear(isolated_dirs: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tlgui.cli import main

    store = PixelStore(limit=10**9)
    _fake(isolated_dirs / "kept", 3, store)
    _fake(isolated_dirs / "lost", 2, store)
    (isolated_dirs / "lost" / "c").rmdir()
    assert main(["cache", "limit", "2GB"]) == 0
    assert "Limit:   2.0 GB" in capsys.readouterr().out
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert f"Folder:  {isolated_dirs / 'cache' / 'pixels'}" in out
    assert f"Used:    {5 * ENTRY / 1000:.1f} kB in 5 decoded images" in out
    assert "Limit:   2.0 GB\n" in out
    assert f"3 images at {SIZE} px  {isolated_dirs / 'kept' / 'c'}\n" in out
    assert f"{isolated_dirs / 'lost' / 'c'}  (folder no longer exists" in out
    assert main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    assert "Removed 2 decoded images" in out and "forgot the dataset" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 3 decoded images" in capsys.readouterr().out
    assert main(["cache", "limit", "lots"]) == 1
    assert "'lots' is not a size" in capsys.readouterr().err
    assert main(["cache", "limit", "default"]) == 0
    assert "(the default" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX links")
def test_a_linked_manifests_folder_is_neither_read_written_nor_cleared(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    outside = tmp_path / "outside"
    outside.mkdir()
    theirs = outside / ("0123456789abcdef-" + str(SIZE) + ".json")
    theirs.write_text('{"folder": "/nowhere", "size": 8, "keys": []}')
    root.mkdir()
    (root / idx.MANIFESTS).symlink_to(outside, target_is_directory=True)
    store = PixelStore(root, limit=10**9)
    _fake(tmp_path / "ds", 2, store)
    assert [p.name for p in outside.iterdir()] == [theirs.name]
    assert cc.inspect(root).datasets == [] and cc.inspect(root).entries == 2
    assert cc.clear(root).entries == 2 and cc.prune(root, limit=0).datasets == []
    assert theirs.is_file() and (root / idx.MANIFESTS).is_symlink()


def test_eviction_and_clear_stop_when_cancelled(tmp_path: Path) -> None:
    import threading

    from tlgui.core.errors import Cancelled

    root = tmp_path / "cache"
    store = PixelStore(root, limit=10**9)
    _fake(tmp_path / "ds", 3, store)
    del store
    gc.collect()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        cc.evict(root, 0, cancel=cancel)
    with pytest.raises(Cancelled):
        cc.clear(root, cancel=cancel)
    assert cc.inspect(root).entries == 3  # nothing removed once cancelled
