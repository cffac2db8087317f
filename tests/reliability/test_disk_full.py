"""A full disk during the cache build and during export (simulated: writes raise ENOSPC)."""

from __future__ import annotations

import errno
import logging
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.imagegen import make_dataset
from tests.reliability.helpers import TINY_P1, temp_litter
from tlgui.core.atomic import TEMP_PREFIX
from tlgui.core.dataset import scan
from tlgui.core.errors import ExportError
from tlgui.core.export import export_model
from tlgui.core.model import ClassifierModel
from tlgui.core.pixel_cache import PixelCache, load_pixels
from tlgui.core.training import run_training


def _no_space(path: object) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def test_cache_disk_full_logs_and_training_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=6))
    root = tmp_path / "cache"
    samples = (*ds.train, *ds.validation)
    load_pixels(samples[:4], 32, PixelCache(root))  # earlier entries, written fine
    earlier = {p: p.read_bytes() for p in root.rglob("*.bin")}
    assert len(earlier) == 4
    real_write_bytes = Path.write_bytes

    def full_disk(self: Path, data: Any) -> int:
        if self.name.startswith(TEMP_PREFIX) and root in self.parents:
            real_write_bytes(self, bytes(data)[: len(data) // 3])  # a part got out
            raise _no_space(self)
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    cache = PixelCache(root)
    with caplog.at_level(logging.WARNING, logger="tlgui.core.pixel_cache"):
        result = run_training(ds, TINY_P1, cache=cache, write_run=False)
    assert not result.cancelled and len(result.history) == 1
    assert len(result.dataset.train) + len(result.dataset.validation) == len(samples)
    # Training streams the pixels back from the cache; with the disk full they are not
    # there, so the feature pass decodes them a second time: slower, never wrong.
    missing = len(samples) - 4
    assert cache.stats.hits == 4 and cache.stats.decoded == 2 * missing
    failed = [r for r in caplog.records if "cannot write cache entry" in r.getMessage()]
    assert len(failed) == 2 * missing
    assert all("No space left on device" in r.getMessage() for r in failed)
    # Nothing half-written is left, and the earlier entries are intact and still valid.
    assert not temp_litter(root)
    assert {p: p.read_bytes() for p in root.rglob("*.bin")} == earlier
    monkeypatch.undo()
    again = PixelCache(root)
    load_pixels(samples[:4], 32, again)
    assert again.stats.hits == 4 and again.stats.corrupt == 0


@pytest.fixture(scope="module")
def tiny_model() -> ClassifierModel:
    return ClassifierModel.build(TINY_P1, ("a", "b", "c"))


def test_export_disk_full_is_a_clear_error_and_keeps_the_earlier_file(
        tiny_model: ClassifierModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "exports" / "model.keras"
    export_model(tiny_model.model, tiny_model.class_names, 32, "keras", out)
    before = out.read_bytes()
    real_writestr = zipfile.ZipFile.writestr
    calls: list[str] = []

    def full_disk(self: zipfile.ZipFile, name: Any, data: Any, *args: Any, **kw: Any) -> None:
        calls.append(str(getattr(name, "filename", name)))
        if len(calls) >= 2:  # the first member fits, then the disk is full
            raise _no_space(self.filename)
        real_writestr(self, name, data, *args, **kw)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full_disk)
    with pytest.raises(ExportError) as info:
        export_model(tiny_model.model, tiny_model.class_names, 32, "keras", out,
                     overwrite=True)
    message = str(info.value)
    assert "No space left on device" in message and str(out) in message
    assert len(calls) >= 2  # the failure really happened mid-write
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.keras"]
    assert not temp_litter(tmp_path)

