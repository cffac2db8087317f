"""Reading the layer tree from a Keras classifier, and applying its flags back (engine side).

``layer_tree`` holds the tree as plain data for the window; this module is the only one
that looks at the Keras objects to fill it, so the window never needs Keras.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tlgui.core.layer_tree import (
    BATCHNORM_NOTE,
    Block,
    Flags,
    LayerNode,
    format_shape,
    head_note_for,
    link,
)
from tlgui.core.model import iter_layers
from tlgui.core.model_names import BACKBONE_NAME

# What ties a backbone's layers to a block, by the names keras.applications gives them
# (MobileNetV2 block_3_expand, EfficientNetV2 block1a_..., ResNet/DenseNet conv2_block1_...,
# ConvNeXt ..._stage_0_block_0_..., MobileNetV3 expanded_conv_1_...).
_BLOCK_PATTERNS = (
    re.compile(r"stage_?\d+_block_?\d+"),
    re.compile(r"downsampling_block_?\d+"),
    re.compile(r"conv\d+_block\d+"),
    re.compile(r"block_?\d+[a-z]?(?=_|$)"),
    re.compile(r"expanded_conv(?:_\d+)?(?=_|$)"),
    re.compile(r"stage_?\d+"),
)


def _output_shape(layer: Any) -> str:
    try:
        return format_shape(tuple(layer.output.shape))
    except Exception:  # layers never called symbolically have no output tensor
        return ""


def _size(variables: Any) -> int:
    return sum(int(math.prod(v.shape)) for v in variables)


def _params(layer: Any) -> int:
    try:
        return int(layer.count_params())
    except Exception:  # an unbuilt layer
        return _size(getattr(layer, "weights", []))


def _trainable_params(layer: Any) -> int:
    """Weights that train when the layer is trainable, whatever its flag is now."""
    subs = getattr(layer, "layers", None)
    if subs:
        return sum(_trainable_params(s) for s in subs)
    own = getattr(layer, "_trainable_variables", None)
    if own is not None:
        return _size(own)
    fixed = getattr(layer, "_non_trainable_variables", [])
    return _params(layer) - _size(fixed)


def block_key(name: str) -> str | None:
    """The block a backbone layer belongs to by its name, or None (stem, top)."""
    for pattern in _BLOCK_PATTERNS:
        m = pattern.search(name)
        if m:
            return m.group(0)
    return None


def find_blocks(backbone: Any) -> list[Block]:
    """The backbone split into blocks that each start at a single-tensor boundary.

    Layers are grouped by their block name. Unnamed layers before the first named block
    are the ``stem``, after the last one the ``top``; unnamed layers between two blocks
    (DenseNet's transitions) end the block before them. A group that does not start at a
    boundary (inside a residual connection) joins the one before it, so fine-tuning from
    a block's first layer never splits a residual block.
    """
    from tlgui.core.frozen_features import boundaries

    layers = backbone.layers
    keys = [block_key(layer.name) for layer in layers]
    named = [i for i, k in enumerate(keys) if k is not None]
    if not named:
        return [Block("all layers", 0, len(layers) - 1)] if layers else []
    labels = []
    for i, key in enumerate(keys):
        if key is not None:
            labels.append(key)
        elif i < named[0]:
            labels.append("stem")
        elif i > named[-1]:
            labels.append("top")
        else:
            labels.append(labels[-1])
    cuts = set(boundaries(backbone))
    blocks: list[Block] = []
    for i, label in enumerate(labels):
        if blocks and (label == blocks[-1].name or i not in cuts):
            blocks[-1] = Block(blocks[-1].name, blocks[-1].first, i)
        else:
            blocks.append(Block(label, i, i))
    return blocks


def build_layer_tree(model: Any) -> LayerNode:
    """Builds the tree of a Keras classifier made by ``ClassifierModel.build``.

    Args:
        model: the Keras model (``ClassifierModel.model``).

    Returns:
        The root node (the model itself); its children are the top-level layers, and
        ``root.blocks`` lists the backbone's blocks.
    """
    root = LayerNode(name=model.name, path=(), type_name=type(model).__name__,
                     params=_params(model), trainable_params=_trainable_params(model),
                     own=bool(model.trainable))
    nodes: dict[tuple[str, ...], LayerNode] = {(): root}
    backbone_index: dict[int, int] = {}
    block_of: dict[int, int] = {}
    try:
        backbone = model.get_layer(BACKBONE_NAME)
    except ValueError:
        backbone = None
    if backbone is not None:
        backbone_index = {id(layer): i for i, layer in enumerate(backbone.layers)}
        root.blocks = find_blocks(backbone)
        for b, block in enumerate(root.blocks):
            for i in range(block.first, block.last + 1):
                block_of[i] = b
    for path, layer in iter_layers(model):
        in_backbone = path[0] == BACKBONE_NAME
        params = _params(layer)
        index = backbone_index.get(id(layer)) if len(path) == 2 and in_backbone else None
        node = LayerNode(
            name=layer.name, path=path, type_name=type(layer).__name__,
            output_shape=_output_shape(layer), params=params,
            trainable_params=_trainable_params(layer),
            editable=in_backbone and params > 0, backbone_index=index,
            own=bool(layer.trainable), block=block_of.get(index) if index is not None else None,
            note=BATCHNORM_NOTE if type(layer).__name__.startswith("BatchNormalization")
            else head_note_for(path))
        nodes[path[:-1]].children.append(node)
        nodes[path] = node
    return link(root)


def read_flags(model: Any) -> Flags:
    """Every layer's own ``trainable`` flag by path, parents first."""
    return tuple((path, bool(layer.trainable)) for path, layer in iter_layers(model))


def apply_flags(model: Any, flags: Flags | list[Any]) -> None:
    """Sets own ``trainable`` flags, parents first (a parent's flag is passed down first).

    Raises:
        KeyError: a path names no layer of the model.
    """
    for path, flag in flags:
        layer = model
        for name in path:
            try:
                layer = layer.get_layer(name)
            except ValueError as exc:
                raise KeyError(f"the model has no layer {'/'.join(path)}") from exc
        layer.trainable = bool(flag)
