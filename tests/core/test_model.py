"""The model: structure, preprocessing contract, fine_tune_at, and the recompile gate."""

from __future__ import annotations

import numpy as np
import pytest

from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.errors import ConfigError, RecompileRequired
from tlgui.core.model import ClassifierModel

TINY = TrainConfig(weights="none", image_size=32)


@pytest.fixture(scope="module")
def tiny() -> ClassifierModel:
    return ClassifierModel.build(TINY, ("a", "b", "c"))


def test_structure_and_raw_pixel_input(tiny: ClassifierModel) -> None:
    names = [layer.name for layer in tiny.model.layers]
    assert names[:3] == ["image", "to_float", "resize"]
    assert names[-4:] == ["backbone", "pool", "dropout", "classifier"]
    assert "augmentation" in names and "preprocess" in names
    assert tiny.model.inputs[0].dtype == "uint8"
    assert all(type(layer).__name__ != "Lambda" for layer in tiny.model.layers)
    # Any size of raw pixels in, a probability distribution out.
    out = np.asarray(tiny.model(np.zeros((2, 71, 45, 3), np.uint8)))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_fine_tune_at_by_index_name_and_default(tiny: ClassifierModel) -> None:
    layers = tiny.backbone.layers
    # The top ~35%, from the start of the block at that mark (block_11 of MobileNetV2).
    start = tiny.fine_tune_index(None)
    assert layers[start].name == "block_11_expand"
    assert start <= round(len(layers) * 0.65) < start + 9
    assert tiny.set_fine_tune_at(100) == 100
    assert not layers[99].trainable and layers[100].trainable
    name = layers[120].name
    assert tiny.set_fine_tune_at(name) == 120
    assert not layers[119].trainable and layers[121].trainable
    with pytest.raises(ConfigError, match="no layer named"):
        tiny.set_fine_tune_at("no_such_layer")
    with pytest.raises(ConfigError, match="outside"):
        tiny.set_fine_tune_at(10_000)


def test_gate_blocks_until_recompiled_then_trains_only_unfrozen() -> None:
    cm = ClassifierModel.build(TINY, ("a", "b"))
    x = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3)).astype(np.uint8)
    y = np.eye(2, dtype=np.float32)[[0, 1] * 4]
    assert cm.needs_recompile  # never compiled
    cm.freeze_backbone()
    cm.compile(PhaseConfig(learning_rate=1e-2))
    assert not cm.needs_recompile
    cm.set_fine_tune_at(130)
    assert cm.needs_recompile
    with pytest.raises(RecompileRequired, match="recompile"):
        cm.fit(x, y, epochs=1, verbose=0)
    # A direct Keras edit is caught too: the gate compares flags, not calls.
    cm.compile(PhaseConfig(learning_rate=1e-2))
    cm.backbone.layers[140].trainable = False
    assert cm.needs_recompile
    cm.set_trainable(("backbone", cm.backbone.layers[140].name), True)
    assert not cm.needs_recompile  # back to the compiled state
    frozen = cm.backbone.layers[10]
    unfrozen = next(la for la in cm.backbone.layers[130:] if la.trainable_weights)
    bn = next(la for la in cm.backbone.layers[130:] if type(la).__name__ == "BatchNormalization")
    before = {id(v): v.numpy() for la in (frozen, unfrozen, bn) for v in la.weights}
    cm.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert all(np.array_equal(before[id(v)], v.numpy()) for v in frozen.weights)
    assert any(not np.array_equal(before[id(v)], v.numpy()) for v in unfrozen.trainable_weights)
    # BatchNormalization keeps its statistics: the backbone runs in inference mode.
    for v in bn.non_trainable_weights:
        assert np.array_equal(before[id(v)], v.numpy()), v.path


def test_set_trainable_inside_frozen_backbone_keeps_siblings_frozen() -> None:
    cm = ClassifierModel.build(TINY, ("a", "b"))
    cm.freeze_backbone()
    target = cm.backbone.layers[-3].name
    cm.set_trainable(("backbone", target), True)
    flags = dict(cm.trainable_flags())
    assert flags[("backbone", target)] is True
    assert flags[("backbone", cm.backbone.layers[5].name)] is False
    trainable, total = cm.param_counts()
    assert 0 < trainable < total


def test_bad_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="Unknown backbone"):
        ClassifierModel.build(TrainConfig(backbone="NoNet", weights="none"), ("a", "b"))
    with pytest.raises(ConfigError, match="does not exist"):
        ClassifierModel.build(TrainConfig(weights="/nope/w.h5", image_size=32), ("a", "b"))
    with pytest.raises(ConfigError, match="too small"):
        ClassifierModel.build(TrainConfig(weights="none", image_size=8), ("a", "b"))


def test_phase2_cut_never_splits_a_residual_block(tiny: ClassifierModel) -> None:
    from tlgui.core.frozen_features import find_cut

    layers = tiny.backbone.layers
    # block_11 adds its input (block_10's output) back in: the cut must sit before block_11.
    assert layers[find_cut(tiny.backbone, 101) - 1].name == "block_10_project_BN"
    assert layers[find_cut(tiny.backbone, 130) - 1].name == "block_13_project_BN"
    assert find_cut(tiny.backbone, 153) == 153
