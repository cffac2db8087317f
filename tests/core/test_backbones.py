"""The backbone registry, weight-file search and safe-mode round trips."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tlgui.core import backbones, weights
from tlgui.core.config import TrainConfig
from tlgui.core.errors import ConfigError, WeightsNotFound
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import load_keras, save_keras

REQUIRED = ("MobileNetV2", "EfficientNetV2B0", "ResNet50V2", "ConvNeXtTiny", "Xception")


def test_registry_facts() -> None:
    assert set(REQUIRED) <= set(backbones.REGISTRY)
    assert backbones.DEFAULT_BACKBONE == "MobileNetV2"
    # ADR 013: each default is the size the backbone's ImageNet weights were trained at.
    assert backbones.get("mobilenetv2").default_size == 224
    for spec in backbones.REGISTRY.values():
        assert spec.params_m > 0 and 50 < spec.top1 < 100 and spec.size_mb > 0
        assert spec.weights_file(spec.default_size).endswith(".h5")
    with pytest.raises(ConfigError):
        backbones.get("AlexNet")


@pytest.mark.parametrize("name", REQUIRED)
def test_each_required_backbone_builds_and_loads_in_safe_mode(name: str, tmp_path: Path) -> None:
    size = backbones.get(name).min_size
    cm = ClassifierModel.build(TrainConfig(backbone=name, weights="none", image_size=size),
                               ("x", "y"))
    assert cm.backbone_name == name
    kinds = {type(layer).__name__ for layer in cm.model.layers}
    assert "Lambda" not in kinds
    path = save_keras(cm.model, tmp_path / "m.keras", cm.class_names)
    model, names, _ = load_keras(path)
    raw = np.random.default_rng(0).integers(0, 255, (2, 50, 40, 3)).astype(np.uint8)
    np.testing.assert_allclose(np.asarray(model(raw)), np.asarray(cm.model(raw)), atol=1e-5)
    assert names == ("x", "y")


def test_weights_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = backbones.get("MobileNetV2")
    name = spec.weights_file(160)
    user, env, keras_home = tmp_path / "user", tmp_path / "env", tmp_path / "kh"
    for d in (user, env / "models", keras_home / "models"):
        d.mkdir(parents=True)
        (d / name).write_bytes(b"w")
    monkeypatch.setenv("TLGUI_WEIGHTS_DIR", str(env))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    assert weights.find_weights(spec, 160, user) == user / name
    assert weights.find_weights(spec, 160) == env / "models" / name
    monkeypatch.delenv("TLGUI_WEIGHTS_DIR")
    assert weights.find_weights(spec, 160) == keras_home / "models" / name
    assert spec.weights_file(300).endswith("_224_no_top.h5")


def test_bundled_folder_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = backbones.get("EfficientNetV2B0")
    monkeypatch.setattr(weights, "bundled_weights_dirs", lambda: [tmp_path])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "none"))
    monkeypatch.delenv("TLGUI_WEIGHTS_DIR", raising=False)
    (tmp_path / spec.weights_file(224)).write_bytes(b"w")
    assert weights.find_weights(spec, 224) == tmp_path / spec.weights_file(224)


def test_offline_missing_weights_error_is_fast_and_names_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("TLGUI_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(weights, "DOWNLOAD_HOST", "10.255.255.1")  # never answers
    monkeypatch.setattr(weights, "CONNECT_TIMEOUT_S", 2.0)
    t0 = time.monotonic()
    with pytest.raises(WeightsNotFound) as exc:
        weights.resolve_weights(backbones.get("Xception"), 299)
    assert time.monotonic() - t0 < 10
    assert "xception_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(exc.value)
    assert "TLGUI_WEIGHTS_DIR" in str(exc.value)


@pytest.mark.real_weights
def test_real_mobilenet_weights_load(real_weights_dir: Path) -> None:
    cm = ClassifierModel.build(TrainConfig(weights_dir=str(real_weights_dir)), ("a", "b"))
    kernel = cm.backbone.get_layer("Conv1").kernel.numpy()
    assert kernel.std() > 0.05  # real filters, not a fresh initialisation


def test_the_size_note_says_why_and_what_another_size_costs() -> None:
    spec = backbones.get("MobileNetV2")
    default = backbones.size_note(spec, None)
    assert default == backbones.size_note(spec, 224)
    assert default.startswith("224 px") and "trained at" in default
    smaller = backbones.size_note(spec, 160)
    assert smaller.startswith("160 px: about 2.0× less computation than 224 px")
    larger = backbones.size_note(spec, 320)
    assert larger.startswith("320 px: about 2.0× the computation of 224 px")
    assert backbones.size_note(backbones.get("Xception"), None).startswith("299 px")
