"""The Qt-free layer tree: structure, flags, tri-state and the fine-tune start."""

from __future__ import annotations

import pytest

from tlgui.core.config import TrainConfig
from tlgui.core.layer_tree import (
    BATCHNORM_NOTE,
    LayerNode,
    apply_own_flags,
    backbone_choices,
    fine_tune_start,
    format_shape,
)
from tlgui.core.layer_tree_keras import build_layer_tree, read_flags
from tlgui.core.model import ClassifierModel


def refresh(root: LayerNode, model: object) -> None:
    """Reads the Keras model's flags into the tree, as the engine does after a change."""
    apply_own_flags(root, read_flags(model))


@pytest.fixture(scope="module")
def cm() -> ClassifierModel:
    return ClassifierModel.build(TrainConfig(weights="none", image_size=32), ("a", "b"))


def test_tree_mirrors_the_model(cm: ClassifierModel) -> None:
    root = build_layer_tree(cm.model)
    top = [n.name for n in root.children]
    assert top == [layer.name for layer in cm.model.layers]
    backbone = root.find(("backbone",))
    assert backbone is not None
    assert len(backbone.children) == len(cm.backbone.layers)
    assert backbone.params == cm.backbone.count_params()
    assert backbone.output_shape == "1 × 1 × 1280"
    assert root.find(("image",)).output_shape == "? × ? × 3"  # type: ignore[union-attr]
    aug = root.find(("augmentation",))
    assert aug is not None and aug.children, "augmentation layers are listed inside it"
    for node in root.walk():
        if node.parent is not None:
            assert node.parent.children[node.row()] is node
    bn = [n for n in backbone.children if n.is_batchnorm]
    assert bn and all(n.note == BATCHNORM_NOTE for n in bn)
    # Only the backbone's weighted layers are editable; the head always trains.
    assert not root.find(("classifier",)).editable  # type: ignore[union-attr]
    assert all(n.editable == (n.params > 0) for n in backbone.children)


def test_check_states_follow_the_model(cm: ClassifierModel) -> None:
    cm.freeze_backbone()
    root = build_layer_tree(cm.model)
    backbone = root.find(("backbone",))
    assert backbone is not None
    assert backbone.check_state() == "unchecked"
    assert root.find(("pool",)).check_state() == "none"  # type: ignore[union-attr]
    assert fine_tune_start(root) == (None, True)

    index = cm.set_fine_tune_at(120)
    refresh(root, cm.model)
    assert backbone.check_state() == "partial"
    start, contiguous = fine_tune_start(root)
    assert contiguous and start is not None and start >= index
    assert cm.backbone.layers[start].trainable

    # Freezing one layer above the start breaks the single-index description.
    above = next(n for n in backbone.children
                 if n.backbone_index is not None and n.backbone_index > start + 5 and n.params)
    cm.set_trainable(above.path, False)
    refresh(root, cm.model)
    assert not above.trainable
    assert fine_tune_start(root) == (start, False)

    cm.set_fine_tune_at(0)
    refresh(root, cm.model)
    assert backbone.check_state() == "checked"
    choices = backbone_choices(root)
    assert choices and all(cm.backbone.layers[i].name == name for i, name in choices)


def test_format_shape() -> None:
    assert format_shape((None, 7, 7, 32)) == "7 × 7 × 32"
    assert format_shape((None, None, None, 3)) == "? × ? × 3"
    assert format_shape(None) == ""
