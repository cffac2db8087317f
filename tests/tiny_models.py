"""Tiny untrained classifiers saved as .keras files, for tests that need a model to load."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlgui.core.config import TrainConfig


def save_random_classifier(path: Path, classes: tuple[str, ...], config: TrainConfig,
                           head_std: float, seed: int = 1) -> Path:
    """Saves a classifier whose random (He-scaled) weights give outputs that differ
    between images; a smaller ``head_std`` gives flatter probabilities."""
    from tlgui.core.model import ClassifierModel
    from tlgui.core.model_file import save_keras

    cm = ClassifierModel.build(config, classes)
    rng = np.random.default_rng(seed)
    for w in cm.backbone.weights:
        if w.path.endswith("kernel"):
            fan_in = int(np.prod(w.shape[:2] if "depthwise" in w.path else w.shape[:-1]))
            w.assign(rng.normal(0, np.sqrt(2.0 / fan_in), w.shape).astype("float32"))
    cm.head.kernel.assign(rng.normal(0, head_std, cm.head.kernel.shape).astype("float32"))
    save_keras(cm.model, path, classes, {"image_size": config.image_size})
    return path
