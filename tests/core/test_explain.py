"""Heat maps: equal to Grad-CAM, drawn where the cells are, written beside nothing the user owns."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.reliability.helpers import tree_digest
from tlgui.cli import main
from tlgui.core.config import AugmentConfig, PhaseConfig, TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.errors import ModelFileError
from tlgui.core.explain import Explainer, Explanation, Grid, overlay, write_explanations
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import save_keras
from tlgui.core.predict import load_classifier
from tlgui.core.training import run_training


class Tiny:
    """A classifier shaped like tlgui's (uint8 in, a nested "backbone", pool, dropout,
    Dense "classifier") whose random features are not vanishingly small, as an
    untrained MobileNetV2's are."""

    def __init__(self, size: int = 48) -> None:
        init = keras.initializers.RandomNormal(stddev=0.5, seed=0)
        inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
        x = keras.layers.Rescaling(1 / 255, name="to_float")(inputs)
        inner = keras.Input((size, size, 3))
        feats = keras.layers.Conv2D(16, 5, strides=4, padding="same", activation="relu",
                                    kernel_initializer=init)(inner)
        x = keras.Model(inner, feats, name="backbone")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dropout(0.2, name="dropout")(x)
        out = keras.layers.Dense(3, activation="softmax", name="classifier",
                                 kernel_initializer=init)(x)
        self.model = keras.Model(inputs, out)
        self.class_names = ("a", "b", "c")
        self.image_size = size
        self.head = self.model.get_layer("classifier")


@pytest.fixture(scope="module")
def model96() -> Tiny:
    return Tiny(96)


def _pixels(n: int, size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the oracle uses a tape")
def test_the_map_is_grad_cam_by_its_gradient_definition(model96: Tiny) -> None:
    import tensorflow as tf

    px = _pixels(6, 96)
    maps = Explainer.of(model96).explain(px)
    fmap = tf.Variable(keras.Model(model96.model.inputs,
                                   model96.model.get_layer("pool").input)([px]))
    kernel, bias = model96.head.kernel, model96.head.bias
    with tf.GradientTape() as tape:
        logits = tf.reduce_mean(fmap, axis=(1, 2)) @ kernel + bias  # the pre-softmax score
        score = tf.reduce_sum([logits[i, m.class_index] for i, m in enumerate(maps)])
    alpha = tf.reduce_mean(tape.gradient(score, fmap), axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("nhwk,nk->nhw", fmap, alpha)).numpy()
    checked = 0
    for i, m in enumerate(maps):
        assert m.heatmap.shape == (24, 24) and m.heatmap.max() <= 1.0
        if cam[i].max() > 0:
            np.testing.assert_allclose(m.heatmap, cam[i] / cam[i].max(), atol=1e-4)
            checked += 1
    assert checked == len(maps)
    probs = model96.model.predict_on_batch(px)
    assert [m.class_index for m in maps] == list(probs.argmax(axis=1))
    assert Explainer.of(model96).explain(px, classes=[2] * 6)[0].class_name == "c"


def test_a_hot_cell_is_drawn_where_it_lies_on_any_aspect() -> None:
    heat = np.zeros((5, 5), np.float32)
    heat[0, 4] = 1.0  # top right
    e = Explanation(heat, 0, "a", 0.9, Grid.even(160, 5, 5))
    x, y = e.peak(300, 100)
    assert x >= 240 and y <= 20  # the top-right cell of a 300 x 100 image
    img = overlay(np.full((100, 300, 3), 128, np.uint8), e)
    assert img.size == (300, 100)
    r, g, b = img.getpixel((x, y))
    assert r > g and r > b  # hot is red
    r, g, b = img.getpixel((20, 90))
    assert b >= r  # cold is blue


def test_loaded_models_explain_alike_and_foreign_models_are_refused(
        model96: Tiny, tmp_path: Path) -> None:
    path = save_keras(model96.model, tmp_path / "m.keras", model96.class_names,
                      {"image_size": 96})
    px = _pixels(3, 96, seed=2)
    here = Explainer.of(model96).explain(px)
    loaded = Explainer.of(load_classifier(path)).explain(px)
    for a, b in zip(here, loaded, strict=True):
        assert a.class_index == b.class_index
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)
    # A real tlgui classifier (untrained MobileNetV2) is explained through its file too.
    cm = ClassifierModel.build(TrainConfig(weights="none", image_size=64), ("x", "y"))
    cm_path = save_keras(cm.model, tmp_path / "cm.keras", cm.class_names, {"image_size": 64})
    maps = Explainer.of(load_classifier(cm_path)).explain(_pixels(2, 64))
    assert [m.heatmap.shape for m in maps] == [(2, 2), (2, 2)]
    inputs = keras.Input((32, 32, 3))
    plain = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ModelFileError, match="classifier made by tlgui"):
        Explainer(plain, ("a", "b"), 32)


def test_predict_explain_writes_pngs_outside_the_inputs_and_never_replaces(
        model96: Tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = save_keras(model96.model, tmp_path / "m.keras", model96.class_names,
                       {"image_size": 96})
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, px in enumerate(_pixels(3, 120, seed=3)):
        Image.fromarray(px[:, :90]).save(photos / f"p{i}.jpg")
    (photos / "broken.jpg").write_bytes(b"not an image")
    before = tree_digest(photos)
    out = tmp_path / "maps"
    assert main(["predict", str(model), str(photos), "--explain", str(out)]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert len(first) == 3 and all(n.startswith("p") and n.endswith(".png") for n in first)
    with Image.open(out / first[0]) as im:
        assert im.size == (90, 120)  # the photo's own size and aspect
    assert main(["predict", str(model), str(photos), "--explain", str(out)]) == 0
    second = sorted(p.name for p in out.iterdir())
    assert len(second) == 6 and set(first) <= set(second)  # free names, nothing replaced
    assert tree_digest(photos) == before
    capsys.readouterr()
    assert main(["predict", str(model), str(photos), "--explain", str(photos / "maps")]) == 1
    assert "overlaps the input" in capsys.readouterr().err
    assert main(["predict", str(model), str(photos / "p0.jpg"), "--explain",
                 str(photos)]) == 1
    assert tree_digest(photos) == before


def test_write_explanations_skips_unreadable_files(model96: Tiny,
                                                   tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    good = tmp_path / "good.png"
    Image.fromarray(_pixels(1, 64)[0]).save(good)
    notes: list[object] = []
    written = write_explanations(Explainer.of(model96), [bad, good], tmp_path / "out",
                                 notes.append)
    assert [p.name for p in written] == [f"good.png.{written[0].name.split('.')[2]}.png"]
    assert any("bad.png" in str(n) for n in notes)


@pytest.mark.real_weights
def test_the_peak_falls_on_the_square_that_decides_the_class(real_weights_dir: Path,
                                                              tmp_path: Path) -> None:
    """Four classes told apart only by the colour of a square at a random place on
    noise: the map's peak must fall on the square for most images.

    The map has one value per cell of the backbone's last block (5 x 5 cells of 32 px
    here), so "on the square" means that the hottest cell overlaps it.
    """
    size, side = 160, 64
    rng = np.random.default_rng(0)
    where: dict[Path, tuple[int, int]] = {}
    colours = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 200, 50),
               "yellow": (230, 220, 30)}
    for name, colour in colours.items():
        (tmp_path / name).mkdir()
        for i in range(30):
            img = rng.normal(128, 20, (size, size, 3)).clip(0, 255).astype(np.uint8)
            x, y = (int(v) for v in rng.integers(0, size - side, 2))
            img[y:y + side, x:x + side] = colour
            path = tmp_path / name / f"{i:02d}.png"
            Image.fromarray(img).save(path)
            where[path] = (x, y)
    config = TrainConfig(weights_dir=str(real_weights_dir), image_size=size,
                         phase1=PhaseConfig(epochs=30, learning_rate=1e-2),
                         phase2=PhaseConfig(epochs=0), augment=AugmentConfig(mode="off"))
    result = run_training(scan(tmp_path), config, write_run=False)
    paths = sorted(where)
    px = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    maps = Explainer.of(result.model).explain(px)
    hits = right = 0
    for p, m in zip(paths, maps, strict=True):
        x, y = where[p]
        row, col = np.unravel_index(int(m.heatmap.argmax()), m.heatmap.shape)
        cell = size / m.heatmap.shape[0]
        hits += (col * cell < x + side and x < (col + 1) * cell and
                 row * cell < y + side and y < (row + 1) * cell)
        right += m.class_name == p.parent.name
    print(f"\npeak on the square for {hits}/{len(paths)} images; {right} classified right")
    assert right >= 0.9 * len(paths)
    assert hits >= 0.7 * len(paths)
