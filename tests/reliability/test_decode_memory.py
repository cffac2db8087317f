"""Memory per image in prediction is bounded as in the scan: the pixel count is checked
from the header before decoding, and the pixels decoded at once by all threads are
limited."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from tests.imagegen import make_image
from tests.reliability.helpers import tiny_model_file
from tlgui.core import imageio
from tlgui.core.predict import Predictor


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    return Predictor.load(tiny_model_file(tmp_path_factory.mktemp("m") / "m.keras"))


def test_pixels_decoded_at_once_stay_within_the_budget(
        predictor: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(8):
        make_image((200, 40, 40), (60, 60), i).save(tmp_path / f"{i}.png")
    budget = 4000  # one 60x60 image (3,600 pixels) at a time
    monkeypatch.setattr(imageio, "DECODE_BUDGET_PIXELS", budget, raising=False)
    lock = threading.Lock()
    active, peak = [0], [0]
    real_load = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> object:
        pixels = self.size[0] * self.size[1]
        with lock:
            active[0] += pixels
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)  # decoding takes a while: threads overlap if allowed
            return real_load(self)
        finally:
            with lock:
                active[0] -= pixels

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    rows = predictor.predict_paths([tmp_path], batch_size=8)
    assert [r.error for r in rows] == [None] * 8
    assert 3600 <= peak[0] <= budget


def test_pixel_limit_holds_even_when_pillows_own_check_is_off(
        predictor: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Scientific code often sets Image.MAX_IMAGE_PIXELS = None in the same process.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(imageio, "MAX_PIXELS", 1000)
    make_image((200, 40, 40), (40, 40), 1).save(tmp_path / "big.png")  # 1,600 pixels
    (row,) = predictor.predict_paths([tmp_path / "big.png"])
    assert row.error is not None and row.error.startswith("decompression bomb")
