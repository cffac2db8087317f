"""Mixed precision: the setting per device, a float32 head, float32 files and exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlgui.core import precision
from tlgui.core.config import TrainConfig
from tlgui.core.devices import DeviceInfo
from tlgui.core.errors import ConfigError
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import load_keras, save_keras

CPU = DeviceInfo("cpu", "CPU", "cpu", "tensorflow")


def _gpu(cc: tuple[int, int] | None) -> DeviceInfo:
    return DeviceInfo("gpu:0", "GPU", "gpu", "tensorflow", 8 * 2**30, cc, "gpu:0")


@pytest.mark.parametrize(("setting", "device", "policy"), [
    ("auto", CPU, "float32"),
    ("auto", _gpu((8, 6)), "mixed_float16"),    # float16 tensor cores from Volta (7.0) on
    ("auto", _gpu((9, 0)), "mixed_float16"),
    ("auto", _gpu((7, 5)), "mixed_float16"),
    ("mixed_bfloat16", _gpu((8, 6)), "mixed_bfloat16"),  # only when asked for
    ("auto", _gpu((6, 1)), "float32"),          # Pascal: no tensor cores
    ("auto", _gpu(None), "float32"),            # Apple's GPU, or capability unknown
    ("float32", _gpu((8, 6)), "float32"),
    ("mixed_float16", CPU, "mixed_float16"),    # forced: allowed anywhere
    ("mixed", _gpu((7, 0)), "mixed_float16"),
    (None, CPU, "float32"),
])
def test_resolve_precision(setting: str | None, device: DeviceInfo, policy: str) -> None:
    assert precision.resolve_precision(setting, device) == policy


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ConfigError, match="Unknown precision 'half'"):
        precision.resolve_precision("half", CPU)


def _mixed_model(policy: str, **config: object) -> ClassifierModel:
    settings: dict[str, object] = {"image_size": 32, **config}
    with precision.dtype_policy(policy):
        return ClassifierModel.build(TrainConfig(**settings),  # type: ignore[arg-type]
                                     ("a", "b", "c"))


def test_mixed_model_keeps_a_float32_head_and_saves_as_float32(tmp_path: Path) -> None:
    import keras

    cm = _mixed_model("mixed_bfloat16", weights="none")
    assert keras.config.dtype_policy().name == "float32"  # the policy was only for the build
    assert precision.model_precision(cm.model) == "mixed_bfloat16"
    assert cm.head.dtype_policy.name == "float32"
    assert cm.backbone.layers[1].dtype_policy.name == "mixed_bfloat16"
    x = np.random.default_rng(0).integers(0, 255, (4, 40, 40, 3)).astype(np.uint8)
    assert np.asarray(cm.model.predict(x, verbose=0)).dtype == np.float32

    copy = precision.float32_copy(cm.model)
    assert copy is not cm.model and precision.model_precision(copy) == "float32"
    for a, b in zip(copy.get_weights(), cm.model.get_weights(), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert precision.float32_copy(copy) is copy

    path = save_keras(cm.model, tmp_path / "m.keras", ("a", "b", "c"), {"image_size": 32})
    loaded, names, _ = load_keras(path)
    assert names == ("a", "b", "c") and precision.model_precision(loaded) == "float32"
    assert precision.model_precision(cm.model) == "mixed_bfloat16"  # in memory: untouched


@pytest.mark.real_weights
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_exported_float32_model_agrees_with_the_mixed_one(policy: str, tmp_path: Path,
                                                          real_weights_dir: Path) -> None:
    """The documented tolerance, on real MobileNetV2 features of generated images.

    The head gets random weights large enough that the probabilities are far from
    uniform, as a trained head's are.
    """
    from tests.imagegen import make_dataset
    from tlgui.core.export import export_model

    cm = _mixed_model(policy, weights="imagenet", weights_dir=str(real_weights_dir / "models"),
                      image_size=96)
    kernel, bias = cm.head.get_weights()
    rng = np.random.default_rng(1)
    cm.head.set_weights([rng.normal(0, 0.1, kernel.shape).astype(np.float32), bias])
    files = sorted(make_dataset(tmp_path / "d", per_class=6, size=(96, 96)).rglob("*.jpg"))
    x = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    mixed = np.asarray(cm.model.predict(x, verbose=0))
    (path,) = export_model(cm.model, ("a", "b", "c"), 96, "keras", tmp_path / "m.keras")
    exported, _, _ = load_keras(path)
    assert precision.model_precision(exported) == "float32"
    full = np.asarray(exported.predict(x, verbose=0))
    assert full.dtype == np.float32
    tolerance = precision.EXPORT_TOLERANCE[policy]
    assert float(np.abs(full - mixed).max()) <= tolerance
    if policy == "mixed_float16":  # the one ``auto`` picks: the same top class too,
        ranked = np.sort(full, axis=1)  # wherever it is not a near tie
        clear = ranked[:, -1] - ranked[:, -2] > 2 * tolerance
        assert clear.sum() >= 6
        assert (full.argmax(1) == mixed.argmax(1))[clear].all()
