"""``tlgui --self-test`` in-process with tiny settings, and its bundled-weights guard."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlgui import selftest
from tlgui.core import weights

WEIGHTS_96 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"


@pytest.fixture
def no_weights(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without weight files anywhere the app looks."""
    monkeypatch.delenv("TLGUI_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv(selftest.REQUIRE_BUNDLED_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(isolated_dirs / "keras"))
    empty = isolated_dirs / "bundled"
    empty.mkdir()
    monkeypatch.setattr(weights, "bundled_weights_dirs", lambda: [empty])
    return empty


def test_make_images_writes_distinct_classes(tmp_path: Path) -> None:
    root = selftest.make_images(tmp_path, per_class=3)
    folders = sorted(p.name for p in root.iterdir())
    assert folders == sorted(name for name, _ in selftest.CLASSES)
    means = []
    for name, _ in selftest.CLASSES:
        files = sorted((root / name).glob("*.jpg"))
        assert len(files) == 3
        means.append(np.asarray(Image.open(files[0])).reshape(-1, 3).mean(axis=0))
    # Each class's colour dominates its own channel more than the other classes do.
    for channel, class_index in ((0, 0), (1, 1), (2, 2)):
        assert int(np.argmax([m[channel] - m.mean() for m in means])) == class_index


def test_self_test_passes_from_source_with_random_weights(no_weights: Path) -> None:
    out = io.StringIO()
    rc = selftest.run_self_test(image_size=32, per_class=6, formats=("keras",),
                                check_qt=False, check_sample_data=False, stream=out)
    text = out.getvalue()
    assert rc == 0, text
    assert "using random weights (weights='none')" in text
    assert "phase 1:" in text and "phase 2:" in text
    assert "export keras: model.keras reloaded, same probabilities" in text
    assert "export onnx" not in text
    # The device it trained on, as listed and as recorded in the run folder.
    assert "device: cpu CPU (setting 'auto'" in text
    assert "trained on: cpu with the tensorflow backend, float32 precision" in text
    assert text.rstrip().endswith("SELF-TEST PASSED")


def test_self_test_fails_on_a_device_that_is_not_there(no_weights: Path) -> None:
    out = io.StringIO()
    rc = selftest.run_self_test(image_size=32, per_class=6, formats=("keras",), check_qt=False,
                                check_sample_data=False, stream=out, device="gpu:3")
    assert rc == 1
    assert "SELF-TEST FAILED: ConfigError: The device 'gpu:3' is not available" in out.getvalue()


def test_self_test_fails_without_bundled_weights_when_required(no_weights: Path) -> None:
    out = io.StringIO()
    rc = selftest.run_self_test(image_size=32, require_bundled=True, check_qt=False,
                                stream=out)
    assert rc == 1
    assert "SELF-TEST FAILED: no bundled MobileNetV2 weights" in out.getvalue()


def test_frozen_build_refuses_weights_from_outside_the_bundle(
        no_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / WEIGHTS_96).write_bytes(b"not used")
    monkeypatch.setenv("TLGUI_WEIGHTS_DIR", str(elsewhere))
    monkeypatch.setattr(selftest.sys, "frozen", True, raising=False)
    out = io.StringIO()
    rc = selftest.run_self_test(check_qt=False, stream=out)
    assert rc == 1
    assert "is not the one shipped with the app" in out.getvalue()


def test_unknown_export_format_fails(no_weights: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.FORMATS_ENV, "keras,zip")
    out = io.StringIO()
    assert selftest.run_self_test(check_qt=False, stream=out) == 1
    assert "unknown export format(s) zip" in out.getvalue()
    monkeypatch.setenv(selftest.FORMATS_ENV, "all")
    assert selftest._formats_from_env() == selftest.ALL_FORMATS


def test_env_variable_requires_bundled_weights(no_weights: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.REQUIRE_BUNDLED_ENV, "1")
    out = io.StringIO()
    assert selftest.run_self_test(image_size=32, check_qt=False, stream=out) == 1
    assert "SELF-TEST FAILED" in out.getvalue()


@pytest.mark.real_weights
def test_self_test_uses_bundled_real_weights(no_weights: Path, real_weights_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Make the shared folder look like the bundle's weights folder.
    monkeypatch.setattr(weights, "bundled_weights_dirs", lambda: [real_weights_dir / "models"])
    out = io.StringIO()
    rc = selftest.run_self_test(per_class=6, formats=("keras",), require_bundled=True,
                                check_qt=False, stream=out)
    text = out.getvalue()
    assert rc == 0, text
    assert f"weights: bundled: {real_weights_dir / 'models' / WEIGHTS_96}" in text
    assert "96 px" in text
    assert "sample data sets: builders found for tf_flowers" in text
