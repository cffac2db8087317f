"""The layer tree item model: Qt's model tester, tri-state ticks, notes, editing lock."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt

from tlgui.core.config import TrainConfig
from tlgui.core.layer_tree import own_flags, param_counts
from tlgui.core.layer_tree_keras import apply_flags, build_layer_tree
from tlgui.core.model import ClassifierModel
from tlgui.gui.layer_tree_model import LayerTreeModel

CHECK = Qt.ItemDataRole.CheckStateRole


@pytest.fixture(scope="module")
def cm() -> ClassifierModel:
    return ClassifierModel.build(TrainConfig(weights="none", image_size=32), ("a", "b", "c"))


@pytest.fixture
def model(cm: ClassifierModel) -> LayerTreeModel:
    cm.set_fine_tune_at(100)
    m = LayerTreeModel()
    m.set_tree(build_layer_tree(cm.model))
    return m


def keras_sees(cm: ClassifierModel, model: LayerTreeModel) -> None:
    """Applies the tree's ticks to Keras, as the engine does when it recompiles."""
    assert model.root is not None
    apply_flags(cm.model, own_flags(model.root))
    trainable, total = param_counts(model.root)
    assert trainable == sum(int(w.numpy().size) for w in cm.model.trainable_weights)
    assert total == cm.model.count_params()


def test_qt_model_tester(qtmodeltester, model: LayerTreeModel) -> None:  # type: ignore[no-untyped-def]
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)


def test_ticks_reach_the_keras_model(cm: ClassifierModel, model: LayerTreeModel) -> None:
    backbone = model.index_of(("backbone",))
    assert backbone.isValid()
    assert model.data(backbone, CHECK) == Qt.CheckState.PartiallyChecked
    assert model.flags(backbone) & Qt.ItemFlag.ItemIsUserCheckable
    # A ticked layer near the top: untick it, and Keras sees the change.
    rows = [model.index(r, 0, backbone) for r in range(model.rowCount(backbone))]
    top = next(i for i in reversed(rows) if model.data(i, CHECK) == Qt.CheckState.Checked)
    path = model.data(top, LayerTreeModel.NODE_ROLE).path
    keras_sees(cm, model)
    assert cm.layer_at(path).trainable
    assert model.setData(top, Qt.CheckState.Unchecked, CHECK)
    keras_sees(cm, model)
    assert not cm.layer_at(path).trainable
    assert model.data(top, CHECK) == Qt.CheckState.Unchecked
    # Ticking the backbone ticks every layer inside it.
    assert model.setData(backbone, Qt.CheckState.Checked.value, CHECK)
    assert model.data(backbone, CHECK) == Qt.CheckState.Checked
    assert all(model.data(i, CHECK) in (None, Qt.CheckState.Checked) for i in rows)
    keras_sees(cm, model)
    assert cm.backbone.trainable and all(layer.trainable for layer in cm.backbone.layers)
    assert model.setData(backbone, Qt.CheckState.Unchecked.value, CHECK)
    keras_sees(cm, model)
    assert not any(w for w in cm.backbone.trainable_weights)


def test_rows_without_weights_or_outside_the_backbone_have_no_tick(
        model: LayerTreeModel) -> None:
    for path in (("classifier",), ("pool",), ("image",)):
        index = model.index_of(path)
        assert index.isValid(), path
        assert model.data(index, CHECK) is None
        assert not model.flags(index) & Qt.ItemFlag.ItemIsUserCheckable
        assert not model.setData(index, Qt.CheckState.Unchecked, CHECK)
    head = model.index_of(("classifier",))
    assert "always trains" in model.data(head.siblingAtColumn(1))


def test_batchnorm_rows_explain_inference_mode(model: LayerTreeModel) -> None:
    bn = model.index_of(("backbone", "bn_Conv1"))
    assert model.data(bn.siblingAtColumn(1)) == "BatchNormalization · inference mode"
    assert "inference mode" in model.data(bn, Qt.ItemDataRole.ToolTipRole)
    assert "ImageNet averages" in model.data(bn, Qt.ItemDataRole.ToolTipRole)


def test_locked_while_training(model: LayerTreeModel) -> None:
    backbone = model.index_of(("backbone",))
    model.set_editable(False)
    assert not model.flags(backbone) & Qt.ItemFlag.ItemIsUserCheckable
    assert not model.setData(backbone, Qt.CheckState.Checked, CHECK)
    model.set_editable(True)
    assert model.flags(backbone) & Qt.ItemFlag.ItemIsUserCheckable
    assert model.rowCount(QModelIndex()) == len(model.root.children)  # type: ignore[union-attr]
