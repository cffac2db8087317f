"""The whole flow, driven like a user: drop a folder, edit layers, train, export, predict."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import drop_paths
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.model import ClassifierModel
from tlgui.gui.layer_tree_model import LayerTreeModel
from tlgui.gui.layer_tree_panel import RECOMPILE_TEXT
from tlgui.gui.main_window import DATA, MODEL, PREDICT

CHECK = Qt.ItemDataRole.CheckStateRole
WAIT = 180_000


@pytest.mark.real_weights
@pytest.mark.gui
def test_drop_train_export_predict(qtbot, window, tiny_dataset: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                   real_weights_dir: Path) -> None:
    win = window
    win.model_panel.set_config(TrainConfig(
        weights_dir=str(real_weights_dir), image_size=96, batch_size=8,
        phase1=PhaseConfig(epochs=3, learning_rate=1e-2, early_stopping_patience=None),
        phase2=PhaseConfig(epochs=2, learning_rate=1e-5, early_stopping_patience=None)))
    s = win.session

    # Drop the folder on the window: classes appear, the model is built in a worker.
    assert drop_paths(win, [tiny_dataset])
    qtbot.waitUntil(lambda: win.dataset_panel.class_model.rowCount() == 3, timeout=WAIT)
    assert win.tabs.currentIndex() == DATA
    assert "broken.jpg" in win.dataset_panel.problems_model.index(0, 0).data()
    qtbot.waitUntil(lambda: s.model is not None and not s.busy, timeout=WAIT)
    assert win.training_panel.start_button.isEnabled()

    # Untick a ticked backbone layer: the banner shows and Train is disabled.
    win.tabs.setCurrentIndex(MODEL)
    layers = win.model_panel.layers
    model = layers.model
    backbone = model.index_of(("backbone",))
    rows = [model.index(r, 0, backbone) for r in range(model.rowCount(backbone))]
    ticked = [i for i in rows if model.data(i, CHECK) == Qt.CheckState.Checked]
    target = ticked[len(ticked) // 2]
    path = model.data(target, LayerTreeModel.NODE_ROLE).path
    top_path = model.data(ticked[-1], LayerTreeModel.NODE_ROLE).path
    # The window holds no Keras model: the weights before training are the ImageNet
    # ones, which a fresh build here reproduces.
    fresh = ClassifierModel.build(win.model_panel.config(), s.dataset.class_names)
    frozen_before = [w.numpy() for w in fresh.layer_at(path).weights]
    top_before = [w.numpy() for w in fresh.layer_at(top_path).weights]
    assert model.setData(target, Qt.CheckState.Unchecked, CHECK)
    qtbot.waitUntil(layers.banner.isVisible, timeout=1000)
    assert layers.banner_label.text() == RECOMPILE_TEXT
    assert not win.training_panel.start_button.isEnabled()
    assert not win.train_action.isEnabled()
    assert "recompile" in win.training_panel.reason_label.text().lower()
    assert layers.custom_label.text(), "fine-tune-from says the ticks are custom now"

    # Recompile: the banner goes, Train is enabled again.
    qtbot.mouseClick(layers.recompile_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not s.busy and not layers.banner.isVisible(), timeout=WAIT)
    assert win.training_panel.start_button.isEnabled()

    # Train both phases.
    with qtbot.waitSignal(s.training_finished, timeout=WAIT) as done:
        qtbot.mouseClick(win.training_panel.start_button, Qt.MouseButton.LeftButton)
    result, outcome = done.args
    assert outcome == "succeeded" and not result.cancelled
    plot = win.training_panel.plot
    epochs = [e for e, _ in plot.points["val_accuracy"]]
    assert epochs == [1, 2, 3, 4, 5]
    assert {h["phase"] for h in result.history} == {1, 2}
    assert plot.boundary == 3.5
    assert plot.best_epoch in (4, 5)
    png = result.run / "training_plot.png"
    qtbot.waitUntil(lambda: png.is_file() and png.stat().st_size > 1000, timeout=WAIT)
    # Phase 2 honoured the edit: the unticked layer kept its weights, a ticked one moved.
    trained = keras.models.load_model(result.run / "model.keras", compile=False)
    trained_cm = ClassifierModel.from_model(trained, s.dataset.class_names, "MobileNetV2", 96)
    for before, w in zip(frozen_before, trained_cm.layer_at(path).weights, strict=True):
        np.testing.assert_array_equal(before, w.numpy())
    after = [w.numpy() for w in trained_cm.layer_at(top_path).weights]
    assert any(not np.array_equal(a, b) for a, b in zip(top_before, after, strict=True))
    target = model.index_of(path)
    assert model.data(target, CHECK) == Qt.CheckState.Unchecked, "the edit survives training"

    # Evaluate runs by itself after training.
    qtbot.waitUntil(lambda: s.evaluation is not None and not s.busy, timeout=WAIT)
    assert win.evaluate_panel.confusion.model().rowCount() == 3
    assert s.evaluation.total == sum(s.evaluation.confusion.ravel())

    # Export as .keras through the dialog.
    win.export_action.trigger()
    dialog = win.export_dialog
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("keras"))
    out = tmp_path / "export" / "colours.keras"
    dialog.dest.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=WAIT)
    assert out.is_file()
    dialog.reject()

    # Predict: drop the exported model, then a new image, on the Predict tab.
    win.tabs.setCurrentIndex(PREDICT)
    panel = win.predict_panel
    assert drop_paths(panel, [out])
    qtbot.waitUntil(lambda: panel.model_path == out and not panel._busy(), timeout=WAIT)
    # The validation images were never trained on: each must get the class the
    # evaluation gave it (same model, other code path), and most must be right.
    val = s.dataset.validation
    names = s.dataset.class_names
    assert drop_paths(panel, [v.path for v in val])
    qtbot.waitUntil(lambda: len(panel.predictions) == len(val), timeout=WAIT)
    assert panel.cards.rowCount() == len(val)
    missed = {m.path: names[m.predicted_label] for m in s.evaluation.misses}
    right = 0
    for sample, pred in zip(val, panel.predictions, strict=True):
        assert pred.error is None and len(pred.top) == 3
        assert pred.path == sample.path
        assert pred.top[0][0] == missed.get(sample.path, names[sample.label])
        right += pred.top[0][0] == names[sample.label]
    assert right >= len(val) - 1, [p.top for p in panel.predictions]
    panel.write_csv(tmp_path / "predictions.csv")
    text = (tmp_path / "predictions.csv").read_text()
    assert all(v.path.name in text for v in val)
