"""Test-time augmentation (``mirror_tta``): the average over image and mirror, and the same
figure from evaluation, prediction and every export format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.core.test_export import spread_weights
from tests.imagegen import COLORS, make_image
from tlgui.core.config import TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.errors import ConfigError, ModelFileError
from tlgui.core.evaluate import evaluate_model
from tlgui.core.explain import Explainer
from tlgui.core.export import export_model
from tlgui.core.metrics import evaluation_from_data, evaluation_to_data
from tlgui.core.mirror_tta import has_mirror, mirror_average
from tlgui.core.model import ClassifierModel
from tlgui.core.pixel_cache import PixelCache
from tlgui.core.predict import Predictor, load_classifier

SIZE = 32
CLASSES = ("a", "b", "c")


@pytest.fixture(scope="module")
def cm() -> ClassifierModel:
    model = ClassifierModel.build(TrainConfig(weights="none", image_size=SIZE), CLASSES)
    spread_weights(model, seed=3)
    return model


def _images(n: int = 6, seed: int = 0) -> np.ndarray:
    # Left and right halves differ, so a mirror is a different image to the network.
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    x[:, :, : SIZE // 3] = rng.integers(0, 60, (n, 1, 1, 3), dtype=np.uint8)
    return x


def _plain(model: object, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))  # type: ignore[operator]


def test_the_average_of_image_and_mirror(cm: ClassifierModel) -> None:
    x = _images()
    plain, mirrored = _plain(cm.model, x), _plain(cm.model, x[:, :, ::-1].copy())
    assert np.abs(plain - mirrored).max() > 1e-3  # the mirror changes the answer
    tta = mirror_average(cm.model)
    np.testing.assert_allclose(_plain(tta, x), (plain + mirrored) / 2, atol=1e-6)
    # Any input size: the mirror sits after the resize.
    other = np.random.default_rng(1).integers(0, 256, (2, 45, 27, 3), dtype=np.uint8)
    assert _plain(tta, other).shape == (2, len(CLASSES))
    # Shares the weights (nothing new to train) and is not wrapped twice.
    assert {id(w) for w in cm.model.weights} <= {id(w) for w in tta.weights}
    assert has_mirror(tta) and mirror_average(tta) is tta and not has_mirror(cm.model)


def test_training_only_layers_are_left_out(cm: ClassifierModel) -> None:
    # The classifier holds random augmentation: called as a plain layer it would flip,
    # rotate and zoom; the averaged model gives the same answer every time.
    tta = mirror_average(cm.model)
    x = _images(2)
    np.testing.assert_array_equal(_plain(tta, x), _plain(tta, x))
    names = {layer.name for layer in tta.layers}
    assert "augmentation" not in names and "dropout" not in names


def test_a_model_not_built_by_tlgui_is_refused(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    foreign = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ConfigError, match="resize"):
        mirror_average(foreign)
    path = tmp_path / "foreign.keras"
    foreign.save(path)
    Predictor.load(path)  # predicting without the mirror still works
    with pytest.raises(ModelFileError, match=r"foreign\.keras"):
        Predictor.load(path, mirror=True)


def _dataset(root: Path) -> Path:
    colors = list(COLORS.values())
    for i, cls in enumerate(CLASSES):
        for part in ("train", "validation"):
            (root / part / cls).mkdir(parents=True)
            for j in range(4):
                make_image(colors[i], (SIZE + 9, SIZE), seed=10 * i + j,
                           pattern="vstripes").save(root / part / cls / f"{j}.png")
    return root


def test_evaluation_export_and_prediction_give_the_same_answers(
        cm: ClassifierModel, tmp_path: Path) -> None:
    ds = scan(_dataset(tmp_path / "data"))
    cache = PixelCache(tmp_path / "cache")
    plain = evaluate_model(cm.model, SIZE, ds, "validation", cache=cache)
    ev = evaluate_model(cm.model, SIZE, ds, "validation", cache=cache, mirror=True)
    assert ev.mirror and not plain.mirror
    assert evaluation_from_data(evaluation_to_data(ev)).mirror
    assert ev.total == plain.total == 12

    out = export_model(cm.model, CLASSES, SIZE, "keras", tmp_path / "tta.keras", mirror=True)
    loaded = load_classifier(out[0])
    assert loaded.meta.get("mirror_average") is True and has_mirror(loaded.model)
    # A run's own model with the box ticked, and the exported file as it is: one figure.
    ticked = Predictor.load(out[0])
    assert ticked.mirror
    files = [s.path for s in ds.validation]
    exported = {r.path: r.top for r in ticked.predict_paths(files, top_k=3)}
    direct = mirror_average(cm.model)
    for s in ds.validation:
        pixels = cache.get(s, SIZE)[None]
        want = _plain(direct, pixels)[0]
        got = dict(exported[s.path])
        for k, name in enumerate(CLASSES):
            assert got[name] == pytest.approx(float(want[k]), abs=1e-5)
    predicted = [CLASSES.index(exported[s.path][0][0]) for s in ds.validation]
    right = sum(p == s.label for p, s in zip(predicted, ds.validation, strict=True))
    assert ev.accuracy == pytest.approx(right / ev.total)
    # Heat maps need the model without the mirror, and say so.
    with pytest.raises(ModelFileError, match="mirror"):
        Explainer.of(loaded)


def test_tflite_export_with_the_mirror_agrees(cm: ClassifierModel, tmp_path: Path) -> None:
    import tensorflow as tf
    out = export_model(cm.model, CLASSES, SIZE, "tflite", tmp_path / "m", mirror=True)
    interpreter = tf.lite.Interpreter(model_path=str(out[0]))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    x = _images(3, seed=4)
    want = _plain(mirror_average(cm.model), x)
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], x[i:i + 1])
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        np.testing.assert_allclose(got, want[i], atol=1e-4)
