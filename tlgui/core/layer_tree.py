"""A plain tree of a classifier's layers: what the window's layer view shows and edits.

The tree is built once per model from ``iter_layers`` and holds facts that do not change
(name, type, output shape, parameters); ``refresh`` re-reads the trainable flags after
an edit. Only layers inside the backbone are editable: the new classifier layer always
trains, and the preprocessing layers have nothing to train.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from tlgui.core.model import BACKBONE_NAME, iter_layers

CheckState = Literal["checked", "unchecked", "partial", "none"]

BATCHNORM_NOTE = (
    "Always runs in inference mode: it keeps the ImageNet averages even when trainable, "
    "because the backbone is called with training=False (small batches would spoil them)."
)
HEAD_NOTE = "The new classifier layer: it always trains, in both phases."


@dataclass(eq=False)
class LayerNode:
    """One layer in the tree.

    Attributes:
        name: the layer's name.
        path: names from the top of the model down to this layer.
        type_name: the Keras class name (``Conv2D``, ``BatchNormalization``...).
        output_shape: e.g. ``5 × 5 × 1280`` (the batch axis left out; ``?`` = any).
        params: number of weights (trainable or not) in this layer and below.
        editable: the user may switch training on or off here.
        backbone_index: index in ``backbone.layers`` for the backbone's own layers.
        trainable: whether its weights train now (all parents trainable too).
        note: a short remark shown beside the layer (batch normalisation, head).
        children: the layers inside it (backbone, augmentation).
        parent: the enclosing node; None for the root.
    """

    name: str
    path: tuple[str, ...]
    type_name: str
    output_shape: str = ""
    params: int = 0
    editable: bool = False
    backbone_index: int | None = None
    trainable: bool = False
    note: str = ""
    children: list[LayerNode] = field(default_factory=list)
    parent: LayerNode | None = field(default=None, repr=False)

    @property
    def is_batchnorm(self) -> bool:
        """True for batch normalisation layers."""
        return self.type_name.startswith("BatchNormalization")

    def row(self) -> int:
        """Position among the parent's children (0 for the root)."""
        if self.parent is None:
            return 0
        for i, child in enumerate(self.parent.children):
            if child is self:
                return i
        raise ValueError(f"{self.name} is not among its parent's children")

    def walk(self) -> Iterator[LayerNode]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, path: tuple[str, ...]) -> LayerNode | None:
        """The node at ``path`` below this one, or None."""
        node: LayerNode | None = self
        for name in path:
            if node is None:
                return None
            node = next((c for c in node.children if c.name == name), None)
        return node

    def check_state(self) -> CheckState:
        """``none`` for layers that cannot be edited; else the state of their weighted leaves."""
        if not self.editable:
            return "none"
        leaves = [n for n in self.walk() if not n.children and n.editable]
        if not leaves:
            return "checked" if self.trainable else "unchecked"
        on = sum(1 for n in leaves if n.trainable)
        if on == 0:
            return "unchecked"
        if on == len(leaves):
            return "checked"
        return "partial"


def format_shape(shape: Any) -> str:
    """``(None, 5, 5, 1280)`` -> ``5 × 5 × 1280``; unknown sizes become ``?``."""
    if shape is None:
        return ""
    dims = list(shape)[1:]
    return " × ".join("?" if d is None else str(d) for d in dims) if dims else "scalar"


def _output_shape(layer: Any) -> str:
    try:
        return format_shape(tuple(layer.output.shape))
    except Exception:  # layers never called symbolically have no output tensor
        return ""


def _params(layer: Any) -> int:
    try:
        return int(layer.count_params())
    except Exception:  # an unbuilt layer
        return sum(int(math.prod(w.shape)) for w in getattr(layer, "weights", []))


def effective_trainable(model: Any, path: tuple[str, ...]) -> bool:
    """True when the layer at ``path`` and every layer enclosing it are trainable."""
    current = model
    for name in path:
        current = current.get_layer(name)
        if not current.trainable:
            return False
    return True


def build_layer_tree(model: Any) -> LayerNode:
    """Builds the tree of a Keras classifier made by ``ClassifierModel.build``.

    Args:
        model: the Keras model (``ClassifierModel.model``).

    Returns:
        The root node (the model itself); its children are the top-level layers.
    """
    root = LayerNode(name=model.name, path=(), type_name=type(model).__name__,
                     params=_params(model))
    nodes: dict[tuple[str, ...], LayerNode] = {(): root}
    backbone_index: dict[int, int] = {}
    try:
        backbone = model.get_layer(BACKBONE_NAME)
        backbone_index = {id(layer): i for i, layer in enumerate(backbone.layers)}
    except ValueError:
        backbone = None
    for path, layer in iter_layers(model):
        in_backbone = path[0] == BACKBONE_NAME
        params = _params(layer)
        node = LayerNode(
            name=layer.name,
            path=path,
            type_name=type(layer).__name__,
            output_shape=_output_shape(layer),
            params=params,
            editable=in_backbone and params > 0,
            backbone_index=backbone_index.get(id(layer)) if len(path) == 2 else None,
        )
        if node.is_batchnorm:
            node.note = BATCHNORM_NOTE
        if path == ("classifier",):
            node.note = HEAD_NOTE
        parent = nodes[path[:-1]]
        node.parent = parent
        parent.children.append(node)
        nodes[path] = node
    del backbone
    refresh(root, model)
    return root


def refresh(root: LayerNode, model: Any) -> None:
    """Re-reads every node's trainable flag from the model."""
    for node in root.walk():
        if node.path:
            node.trainable = effective_trainable(model, node.path)
        else:
            node.trainable = bool(model.trainable)


def backbone_choices(root: LayerNode) -> list[tuple[int, str]]:
    """(index, name) of the backbone's own layers with weights: where fine-tuning may start."""
    node = root.find((BACKBONE_NAME,))
    if node is None:
        return []
    return [(c.backbone_index, c.name) for c in node.children
            if c.backbone_index is not None and c.params > 0]


def fine_tune_start(root: LayerNode) -> tuple[int | None, bool]:
    """Where fine-tuning starts by the current flags.

    Returns:
        (index of the lowest trainable backbone layer with weights or None, True when
        every weighted backbone layer above it is trainable too, so that one index
        describes the selection).
    """
    node = root.find((BACKBONE_NAME,))
    if node is None:
        return None, True
    weighted = [c for c in node.children if c.backbone_index is not None and c.params > 0]
    first = next((i for i, c in enumerate(weighted) if c.trainable), None)
    if first is None:
        return None, True
    contiguous = all(c.trainable for c in weighted[first:])
    return weighted[first].backbone_index, contiguous
