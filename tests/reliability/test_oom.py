"""Out of memory on the accelerator: a smaller batch with a message, not a crash."""

from __future__ import annotations

from typing import Any

import pytest
import tensorflow as tf

from tests.imagegen import make_dataset
from tests.reliability.helpers import TINY_P1
from tlgui.core import frozen_features as ff
from tlgui.core.dataset import scan
from tlgui.core.errors import Cancelled
from tlgui.core.events import Event, Notice
from tlgui.core.oom import is_out_of_memory, with_oom_retry
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.training import run_training


def _oom() -> tf.errors.ResourceExhaustedError:
    return tf.errors.ResourceExhaustedError(
        None, None, "OOM when allocating tensor with shape[32,7,7,1280] on GPU:0")


@pytest.mark.parametrize(("exc", "oom"), [
    (_oom(), True),
    (RuntimeError("CUDA error: out of memory"), True),
    (RuntimeError("RESOURCE_EXHAUSTED: failed to allocate 2.0GiB"), True),
    (MemoryError(), True),
    (ValueError("Shapes (None, 3) and (None, 4) are incompatible"), False),
    (RuntimeError("zoom factor must be positive"), False),
])
def test_out_of_memory_is_recognised(exc: BaseException, oom: bool) -> None:
    assert is_out_of_memory(exc) is oom


def test_retry_halves_down_to_one_then_gives_up() -> None:
    tried: list[int] = []
    notices: list[Event] = []

    def never_fits(bs: int) -> None:
        tried.append(bs)
        raise _oom()

    with pytest.raises(tf.errors.ResourceExhaustedError):
        with_oom_retry(never_fits, 12, notices.append, "training")
    assert tried == [12, 6, 3, 1]
    assert len(notices) == 3

    def broken(bs: int) -> None:
        tried.append(bs)
        raise ValueError("not a memory problem")

    tried.clear()
    with pytest.raises(ValueError, match="not a memory problem"):
        with_oom_retry(broken, 8, notices.append, "training")
    assert tried == [8]  # other errors are never retried

    def cancelled(bs: int) -> None:
        raise Cancelled()

    with pytest.raises(Cancelled):
        with_oom_retry(cancelled, 8, notices.append, "training")


def test_training_out_of_memory_retries_with_a_smaller_batch(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = scan(make_dataset(tmp_path / "d", per_class=6))
    feature_sizes: list[int] = []
    fit_sizes: list[int] = []
    real_extract = ff.extract
    real_getitem = ff.ViewBatches.__getitem__

    def extract(cm: Any, pixels: Any, views: int, cut: Any, batch_size: int,
                *args: Any, **kwargs: Any) -> Any:
        feature_sizes.append(batch_size)
        if batch_size > 4:
            raise _oom()
        return real_extract(cm, pixels, views, cut, batch_size, *args, **kwargs)

    def getitem(self: Any, i: int) -> Any:
        fit_sizes.append(self.batch_size)
        if self.batch_size > 4:
            raise _oom()
        return real_getitem(self, i)

    monkeypatch.setattr(ff, "extract", extract)
    monkeypatch.setattr(ff.ViewBatches, "__getitem__", getitem)
    events: list[Event] = []
    result = run_training(ds, TINY_P1, report=events.append,
                          cache=PixelCache(tmp_path / "cache"), write_run=False)
    assert not result.cancelled
    assert [h["epoch"] for h in result.history] == [1]  # the failed attempt left no row
    # Features: 16 -> 8 -> 4 for training and validation images; fit: 8 -> 4.
    assert [b for b in feature_sizes if b > 4] == [16, 8, 16, 8]
    assert max(fit_sizes) == 8 and fit_sizes[-1] == 4
    smaller = [e.message for e in events
               if isinstance(e, Notice) and e.level == "warning" and "smaller batch" in e.message]
    assert len(smaller) == 5
    assert any("training with batches of 8" in m and "of 4" in m for m in smaller)
