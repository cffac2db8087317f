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
    # The untrained model misses most images: their confidences show the averaging.
    assert plain.misses and ev.misses
    assert {(m.path, round(m.confidence, 6)) for m in plain.misses} != \
        {(m.path, round(m.confidence, 6)) for m in ev.misses}
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


@pytest.mark.slow  # the TFLite converter takes ~18 s; ONNX and .keras are checked every run
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


def test_crafted_models_are_refused_with_a_reason(tmp_path: Path) -> None:
    import keras

    # A layer named "resize" that does not resize.
    inputs = keras.Input((None, None, 3), dtype="uint8")
    x = keras.layers.Rescaling(1.0, name="resize")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    fake = keras.Model(inputs, keras.layers.Dense(2, activation="softmax",
                                                  name="classifier")(x))
    with pytest.raises(ConfigError, match="does not resize"):
        mirror_average(fake)
    # Layers in tlgui's order that do not form its chain: a skip connection.
    inputs = keras.Input((None, None, 3), dtype="uint8")
    f = keras.layers.Rescaling(1.0, name="to_float")(inputs)
    r = keras.layers.Resizing(SIZE, SIZE, name="resize")(f)
    s = keras.layers.Rescaling(2.0, name="scale")(r)
    joined = keras.layers.Add(name="join")([r, s])
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(joined)
    branchy = keras.Model(inputs, keras.layers.Dense(2, activation="softmax",
                                                     name="classifier")(pooled))
    with pytest.raises(ConfigError, match="trained by tlgui"):
        mirror_average(branchy)
    path = tmp_path / "branchy.keras"
    branchy.save(path)
    with pytest.raises(ModelFileError, match=r"branchy\.keras"):
        Predictor.load(path, mirror=True)


def test_the_mirror_flag_in_a_file_is_checked_and_never_copied(
        cm: ClassifierModel, tmp_path: Path) -> None:
    from tlgui.core.model_file import save_keras

    plain = export_model(cm.model, CLASSES, SIZE, "keras", tmp_path / "plain.keras")
    assert load_classifier(plain[0]).meta.get("mirror_average") is False
    bad = tmp_path / "bad.keras"
    save_keras(cm.model, bad, CLASSES, {"image_size": SIZE, "mirror_average": "yes"})
    with pytest.raises(ModelFileError, match="mirror_average"):
        load_classifier(bad)
    # A file that claims the mirror without holding it: the export says what it holds.
    liar = tmp_path / "liar.keras"
    save_keras(cm.model, liar, CLASSES, {"image_size": SIZE, "mirror_average": True})
    again = export_model(load_classifier(liar).model, CLASSES, SIZE, "keras",
                         tmp_path / "again.keras", extra=load_classifier(liar).meta)
    assert load_classifier(again[0]).meta.get("mirror_average") is False


def test_onnx_export_with_the_mirror_agrees(cm: ClassifierModel, tmp_path: Path) -> None:
    import onnxruntime

    out = export_model(cm.model, CLASSES, SIZE, "onnx", tmp_path / "m", mirror=True)
    session = onnxruntime.InferenceSession(str(out[0]))
    x = _images(3, seed=5)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, _plain(mirror_average(cm.model), x), atol=1e-4)


def test_a_fine_tuned_model_stays_in_inference_mode(tmp_path: Path) -> None:
    # After phase 2 the backbone's layers are trainable: a graph that did not pin
    # ``training=False`` would normalise with each batch's own statistics when called
    # without it (plain Keras users of the export do that).
    cm = ClassifierModel.build(TrainConfig(weights="none", image_size=SIZE), CLASSES)
    spread_weights(cm, seed=5)
    cm.backbone.trainable = True
    tta = mirror_average(cm.model)
    x = _images(4, seed=6)
    np.testing.assert_allclose(np.asarray(tta(x)), _plain(tta, x), atol=1e-6)
    np.testing.assert_allclose(np.asarray(tta(x[:1])), _plain(tta, x)[:1], atol=1e-5)
    out = export_model(cm.model, CLASSES, SIZE, "keras", tmp_path / "ft.keras", mirror=True)
    import keras

    plain_keras = keras.saving.load_model(out[0], safe_mode=True)
    np.testing.assert_allclose(np.asarray(plain_keras(x)), _plain(tta, x), atol=1e-5)
