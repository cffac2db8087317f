"""Registry of ImageNet backbones: size, facts shown to users, weights file, preprocessing.

Plain facts only, so the window can list the backbones without loading Keras; the
Keras side (constructor, preprocessing layers) is in ``backbone_layers``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Preprocessing = Literal["tf", "torch", "builtin"]

_MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class BackboneSpec:
    """Facts about one backbone.

    Attributes:
        name: the name users pick (the ``keras.applications`` function name).
        default_size: default square input size in pixels.
        params_m: parameters without the top, in millions.
        top1: ImageNet top-1 accuracy (%) as published by Keras.
        size_mb: size of the no-top weights file in MB.
        preprocessing: ``tf`` scales to -1..1, ``torch`` to ImageNet mean/std,
            ``builtin`` means the backbone normalises raw 0..255 pixels itself.
        summary: one line for the backbone picker.
        min_size: smallest input size the architecture accepts.
    """

    name: str
    default_size: int
    params_m: float
    top1: float
    size_mb: float
    preprocessing: Preprocessing
    summary: str
    min_size: int = 32

    def weights_file(self, image_size: int) -> str:
        """The file name Keras uses for the ImageNet weights without the top."""
        return _WEIGHT_FILES[self.name](image_size)


def _mobilenet_v2_file(size: int) -> str:
    rows = size if size in _MOBILENET_V2_SIZES else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"


_WEIGHT_FILES: dict[str, Callable[[int], str]] = {
    "MobileNetV2": _mobilenet_v2_file,
    "MobileNetV3Small": lambda s: "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    "MobileNetV3Large": lambda s: "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
    "EfficientNetV2B0": lambda s: "efficientnetv2-b0_notop.h5",
    "EfficientNetV2S": lambda s: "efficientnetv2-s_notop.h5",
    "ResNet50V2": lambda s: "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ConvNeXtTiny": lambda s: "convnext_tiny_notop.h5",
    "Xception": lambda s: "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "DenseNet121": lambda s: "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
}

REGISTRY: dict[str, BackboneSpec] = {
    s.name: s
    for s in (
        BackboneSpec("MobileNetV2", 224, 2.3, 71.3, 9.4, "tf",
                     "Small and fast; the best first choice on a laptop."),
        BackboneSpec("MobileNetV3Small", 224, 0.9, 68.1, 4.3, "builtin",
                     "Tiniest and fastest; a little less accurate."),
        BackboneSpec("MobileNetV3Large", 224, 3.0, 75.6, 12.0, "builtin",
                     "Fast and more accurate than MobileNetV2."),
        BackboneSpec("EfficientNetV2B0", 224, 5.9, 78.7, 24.3, "builtin",
                     "Good accuracy for its size."),
        BackboneSpec("EfficientNetV2S", 384, 20.3, 83.9, 82.7, "builtin",
                     "Very accurate; slow without a GPU."),
        BackboneSpec("ResNet50V2", 224, 23.6, 76.0, 94.7, "tf",
                     "Classic and robust; needs a GPU to be quick."),
        BackboneSpec("ConvNeXtTiny", 224, 27.8, 81.3, 111.0, "builtin",
                     "Modern and accurate; needs a GPU to be quick."),
        BackboneSpec("Xception", 299, 20.9, 79.0, 83.7, "tf",
                     "Accurate at 299 px; slow without a GPU.", 71),
        BackboneSpec("DenseNet121", 224, 7.0, 75.0, 29.1, "torch",
                     "Compact and accurate; moderate speed."),
    )
}
DEFAULT_BACKBONE = "MobileNetV2"
# Every default size is the resolution the backbone's ImageNet weights were trained at
# (ADR 013). Runs saved before ADR 013 with no size in their config ran at these.
DEFAULT_SIZE_BEFORE_ADR_013 = {"MobileNetV2": 160}


def size_note(spec: BackboneSpec, size: int | None) -> str:
    """One line on the image size chosen for ``spec`` (``None``: its default), for the
    Model tab: why the default is what it is, and what another size costs."""
    native = spec.default_size
    if not size or size == native:
        return (f"{native} px: the size {spec.name}'s ImageNet weights were trained at, the "
                "most accurate choice measured; smaller sizes train faster but lose accuracy.")
    ratio = (native / size) ** 2
    if size < native:
        return (f"{size} px: about {ratio:.1f}× less computation than {native} px, usually "
                f"less accurate (the weights were trained at {native} px).")
    return (f"{size} px: about {1 / ratio:.1f}× the computation of {native} px; it helps only "
            "when small details decide the class.")


def get(name: str) -> BackboneSpec:
    """Looks up a backbone by name (case-insensitive).

    Raises:
        ConfigError: the name is not in the registry.
    """
    from tlgui.core.errors import ConfigError

    for key, spec in REGISTRY.items():
        if key.lower() == name.lower():
            return spec
    raise ConfigError(
        f"Unknown backbone '{name}'. Choose one of: {', '.join(REGISTRY)}."
    )
