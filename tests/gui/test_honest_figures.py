"""Issue 15 in the window: the Evaluate tab's interval and caveat, the mirror-average box of
Evaluate, Predict and Export, and the Model tab's line on the image size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gui.conftest import TINY
from tests.gui.test_export_dialog import _dialog
from tests.gui.test_predict_panel import _idle, _load
from tlgui.core.predict import Predictor
from tlgui.core.runs import EVALUATION_FILE

pytestmark = pytest.mark.gui
WAIT = 120_000


def test_evaluate_gives_the_interval_and_the_mirror_on_demand(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path) -> None:
    win, s = window, window.session
    s.open_dataset(tiny_dataset)
    qtbot.waitUntil(lambda: s.model is not None and not s.busy, timeout=WAIT)
    win.model_panel.set_config(TINY)
    with qtbot.waitSignal(s.evaluation_ready, timeout=WAIT):
        assert s.start_training()
    qtbot.waitUntil(lambda: not s.busy, timeout=WAIT)
    text = win.evaluate_panel.summary.text()
    total = s.evaluation.total
    assert f"of {total} validation images classified correctly (95% interval" in text
    epochs = len(s.result.history)
    assert f"best of {epochs} on these same images" in text and "test/ folder" in text
    photos = len(s.dataset.train) + len(s.dataset.validation)
    assert f"Cross-validated over all {photos} photos" in text
    assert not s.evaluation.mirror and "mirror" not in text

    # Ticking the box evaluates again, each image averaged with its mirror; ticked while
    # an evaluation runs, it takes effect once that one ends.
    s.start_evaluation()
    assert s.busy == "evaluating"
    win.evaluate_panel.mirror_box.setChecked(True)
    qtbot.waitUntil(lambda: s.evaluation.mirror and not s.busy, timeout=WAIT)
    assert win.evaluate_panel.mirror_box.isChecked() and s.evaluation.total == total
    assert "each averaged with its mirror (95% interval" in win.evaluate_panel.summary.text()
    saved = json.loads((s.model.run / EVALUATION_FILE).read_text())
    assert saved["mirror"] is True


def test_predict_classifies_again_with_the_mirror(  # type: ignore[no-untyped-def]
        qtbot, window, tiny_dataset: Path, tiny_model_file: Path) -> None:
    panel = window.predict_panel
    _load(qtbot, panel, tiny_model_file)
    images = sorted((tiny_dataset / "red").iterdir())[:3]
    panel.predict(images)
    _idle(qtbot, panel)
    plain = {p.path: dict(p.top) for p in panel.predictions}
    assert "mirror" not in panel.model_label.text()

    panel.mirror_box.setChecked(True)
    qtbot.waitUntil(lambda: "averaged with the mirror image" in panel.model_label.text(),
                    timeout=WAIT)
    _idle(qtbot, panel)
    got = {p.path: dict(p.top) for p in panel.predictions}
    assert sorted(got) == sorted(plain)  # the same cards, classified again
    want = {p.path: dict(p.top) for p in
            Predictor.load(tiny_model_file, mirror=True).predict_paths(images)}
    for path in images:
        for name, prob in want[path].items():
            assert got[path][name] == pytest.approx(prob, abs=1e-5)
    assert any(got[p] != plain[p] for p in images)  # the mirror changed the answers


def test_export_passes_the_mirror_box_on(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialog = _dialog(qtbot, tmp_path, [])
    started: list[object] = []
    monkeypatch.setattr("tlgui.gui.export_dialog.start_job",
                        lambda _name, work, **_k: started.append(work))
    dialog.start()
    dialog.mirror_box.setChecked(True)
    dialog.dest.setText(str(tmp_path / "other.keras"))
    dialog.start()
    assert [w.keywords["mirror"] for w in started] == [False, True]  # type: ignore[attr-defined]


def test_the_model_tab_says_why_the_size(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    panel = window.model_panel
    panel.image_size.setValue(0)  # the backbone's default
    assert panel.size_note.text().startswith("224 px: the size MobileNetV2's ImageNet "
                                             "weights were trained at")
    panel.image_size.setValue(160)
    assert panel.size_note.text().startswith("160 px: about 2.0× less computation")


def test_an_opened_run_shows_its_test_figure_and_mirror_state(  # type: ignore[no-untyped-def]
        qtbot, window, tmp_path: Path) -> None:
    from tests.imagegen import make_dataset

    root = tmp_path / "split"
    for part, n in (("train", 8), ("validation", 4), ("test", 3)):
        make_dataset(root / part, per_class=n, seed=len(part))
    win, s = window, window.session
    s.open_dataset(root)
    qtbot.waitUntil(lambda: s.model is not None and not s.busy, timeout=WAIT)
    win.model_panel.set_config(TINY)
    win.evaluate_panel.mirror_box.setChecked(True)  # before training: used from the start
    with qtbot.waitSignal(s.test_ready, timeout=WAIT):
        assert s.start_training()
    qtbot.waitUntil(lambda: not s.busy, timeout=WAIT)
    run = s.model.run
    assert s.evaluation.mirror and s.evaluation.split == "validation"
    line = win.evaluate_panel.test_line
    shown = line.text()
    assert not line.isHidden() and "each averaged with its mirror" in shown
    assert "of 9 test images classified correctly" in shown
    assert "measured once after training" in shown and "chose nothing" in shown
    saved = json.loads((run / "test_evaluation.json").read_text())
    assert saved["split"] == "test" and sum(map(sum, saved["confusion"])) == 9
    # Evaluating again measures the validation images only.
    measured: list[object] = []
    s.test_ready.connect(measured.append)
    with qtbot.waitSignal(s.evaluation_ready, timeout=WAIT):
        win.evaluate_panel.again_button.click()
    qtbot.waitUntil(lambda: not s.busy, timeout=WAIT)
    qtbot.wait(300)
    assert not measured and s.evaluation.split == "validation"
    # Another training hides it (another model's figure); opening the run shows it again.
    with qtbot.waitSignal(s.test_ready, timeout=WAIT):
        assert s.start_training()
    qtbot.waitUntil(lambda: not s.busy, timeout=WAIT)
    win.evaluate_panel.mirror_box.setChecked(False)
    qtbot.waitUntil(lambda: not s.busy and not s.evaluation.mirror, timeout=WAIT)
    with qtbot.waitSignal(s.test_ready, timeout=WAIT):
        s.open_run(run)
    qtbot.waitUntil(lambda: not s.busy, timeout=WAIT)
    assert not line.isHidden() and line.text() == shown
    assert win.evaluate_panel.mirror_box.isChecked()  # that run's figure was mirrored
