"""A plain tree of a classifier's layers: what the window's layer view shows and edits.

The tree is pure data: it is read from the Keras model once in the engine process
(``layer_tree_keras.build_layer_tree``), travels to the window as a dict, and the window
edits the trainable flags on it without asking Keras. The flag rules copy Keras 3's: a
layer's own ``trainable`` flag is passed down to every layer inside it when set, and a
layer's weights train only when it and every layer enclosing it are trainable. The engine
applies the flags (``own_flags``) to the real model when it compiles, which is what
clears the recompile gate.

Only layers inside the backbone are editable: the new classifier layer always trains,
and the preprocessing layers have nothing to train.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tlgui.core.model_names import BACKBONE_NAME, HEAD_NAME

CheckState = Literal["checked", "unchecked", "partial", "none"]
Flags = tuple[tuple[tuple[str, ...], bool], ...]

BATCHNORM_NOTE = (
    "Always runs in inference mode: it keeps the ImageNet averages even when trainable, "
    "because the backbone is called with training=False (small batches would spoil them)."
)
HEAD_NOTE = "The new classifier layer: it always trains, in both phases."
# A tree read from an untrusted source (a run folder) is refused past these sizes.
MAX_NODES = 20_000
MAX_DEPTH = 8


@dataclass(eq=False)
class LayerNode:
    """One layer in the tree.

    Attributes:
        name: the layer's name.
        path: names from the top of the model down to this layer.
        type_name: the Keras class name (``Conv2D``, ``BatchNormalization``...).
        output_shape: e.g. ``5 × 5 × 1280`` (the batch axis left out; ``?`` = any).
        params: number of weights (trainable or not) in this layer and below.
        trainable_params: weights in this layer and below that train when it is trainable
            (batch normalisation's moving averages never do).
        editable: the user may switch training on or off here.
        backbone_index: index in ``backbone.layers`` for the backbone's own layers.
        own: the layer's own ``trainable`` flag.
        trainable: whether its weights train now (``own`` and every parent's ``own``).
        note: a short remark shown beside the layer (batch normalisation, head).
        block: for the backbone's own layers, the index of their block in ``blocks``.
        children: the layers inside it (backbone, augmentation).
        parent: the enclosing node; None for the root.
        blocks: on the root only: the backbone's blocks, bottom to top.
    """

    name: str
    path: tuple[str, ...]
    type_name: str
    output_shape: str = ""
    params: int = 0
    trainable_params: int = 0
    editable: bool = False
    backbone_index: int | None = None
    own: bool = True
    trainable: bool = False
    note: str = ""
    block: int | None = None
    children: list[LayerNode] = field(default_factory=list)
    parent: LayerNode | None = field(default=None, repr=False)
    blocks: list[Block] = field(default_factory=list)

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

    def find(self, path: Sequence[str]) -> LayerNode | None:
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
        return _state(sum(1 for n in leaves if n.trainable), len(leaves))


@dataclass(frozen=True)
class Block:
    """A run of backbone layers between two single-tensor boundaries.

    Fine-tuning can start at ``first`` without splitting a residual connection.

    Attributes:
        name: what the layers have in common (``block_3``, ``stage 2``...).
        first: backbone index of its first layer.
        last: backbone index of its last layer.
    """

    name: str
    first: int
    last: int


def _state(on: int, total: int) -> CheckState:
    if on == 0:
        return "unchecked"
    return "checked" if on == total else "partial"


def format_shape(shape: Any) -> str:
    """``(None, 5, 5, 1280)`` -> ``5 × 5 × 1280``; unknown sizes become ``?``."""
    if shape is None:
        return ""
    dims = list(shape)[1:]
    return " × ".join("?" if d is None else str(d) for d in dims) if dims else "scalar"


def link(root: LayerNode) -> LayerNode:
    """Sets every node's ``parent`` and effective ``trainable`` flag; returns ``root``."""
    for node in root.walk():
        for child in node.children:
            child.parent = node
    update_effective(root)
    return root


def update_effective(root: LayerNode) -> None:
    """Recomputes every node's effective ``trainable`` from the own flags."""
    def visit(node: LayerNode, parents_on: bool) -> None:
        node.trainable = parents_on and node.own
        for child in node.children:
            visit(child, node.trainable)

    visit(root, True)


# -- flag edits (the rules of ClassifierModel.set_trainable, on data) -------------------
def set_trainable(root: LayerNode, path: Sequence[str], trainable: bool) -> None:
    """Sets one layer's flag and every layer's inside it, as Keras does.

    Unfreezing a layer inside a frozen container unfreezes the container itself without
    changing the container's other layers.
    """
    path = tuple(path)
    target = root.find(path)
    if target is None:
        raise KeyError(f"no layer at {'/'.join(path)}")
    if trainable:
        for depth in range(1, len(path)):
            parent = root.find(path[:depth])
            assert parent is not None
            if not parent.own:
                parent.own = True  # Keras passes the flag down; the others keep theirs
    for node in target.walk():
        node.own = trainable
    update_effective(root)


def backbone_node(root: LayerNode) -> LayerNode | None:
    """The backbone's node, or None."""
    return root.find((BACKBONE_NAME,))


def set_fine_tune_at(root: LayerNode, index: int | None) -> None:
    """Freezes the backbone below ``index`` and unfreezes the rest (None: all frozen)."""
    backbone = backbone_node(root)
    if backbone is None:
        return
    if index is None:
        for node in backbone.walk():
            node.own = False
    else:
        backbone.own = True
        for child in backbone.children:
            on = child.backbone_index is not None and child.backbone_index >= index
            for node in child.walk():
                node.own = on
    update_effective(root)


def same_layers(a: LayerNode, b: LayerNode) -> bool:
    """True when two trees list the same layers (names, types, shapes, sizes)."""
    def facts(root: LayerNode) -> list[tuple[Any, ...]]:
        return [(n.path, n.type_name, n.output_shape, n.params, n.backbone_index)
                for n in root.walk()]

    return facts(a) == facts(b) and [(x.first, x.last) for x in a.blocks] == \
        [(x.first, x.last) for x in b.blocks]


def own_flags(root: LayerNode) -> Flags:
    """Every layer's own flag by path, parents before children (the order to apply them)."""
    return tuple((n.path, n.own) for n in root.walk() if n.path)


def apply_own_flags(root: LayerNode, flags: Flags | Sequence[Sequence[Any]]) -> None:
    """Puts back flags from ``own_flags`` (unknown paths are ignored)."""
    for path, flag in flags:
        node = root.find(tuple(path))
        if node is not None:
            node.own = bool(flag)
    update_effective(root)


def weighted_backbone_layers(root: LayerNode) -> list[LayerNode]:
    """The backbone's own layers that have weights, bottom to top."""
    backbone = backbone_node(root)
    if backbone is None:
        return []
    return [c for c in backbone.children if c.backbone_index is not None and c.params > 0]


def first_trainable_backbone_index(root: LayerNode) -> int | None:
    """Index of the lowest backbone layer whose weights train, or None."""
    for node in weighted_backbone_layers(root):
        if node.trainable and node.trainable_params > 0:
            return node.backbone_index
    return None


def param_counts(root: LayerNode) -> tuple[int, int]:
    """(trainable, total) parameters of the model by the current flags."""
    trainable = sum(n.trainable_params for n in root.walk()
                    if not n.children and n.trainable and n.path)
    return trainable, root.params


def backbone_choices(root: LayerNode) -> list[tuple[int, str]]:
    """(index, name) of the backbone's own layers with weights: where fine-tuning may start."""
    return [(n.backbone_index, n.name) for n in weighted_backbone_layers(root)
            if n.backbone_index is not None]


def fine_tune_start(root: LayerNode) -> tuple[int | None, bool]:
    """Where fine-tuning starts by the current flags.

    Returns:
        (index of the lowest trainable backbone layer with weights or None, True when
        every weighted backbone layer above it is trainable too, so that one index
        describes the selection).
    """
    weighted = weighted_backbone_layers(root)
    first = next((i for i, c in enumerate(weighted) if c.trainable), None)
    if first is None:
        return None, True
    contiguous = all(c.trainable for c in weighted[first:])
    return weighted[first].backbone_index, contiguous


# -- blocks -----------------------------------------------------------------------------
def block_layers(root: LayerNode, block: int) -> list[LayerNode]:
    """The backbone's own layers of one block."""
    backbone = backbone_node(root)
    return [] if backbone is None else [c for c in backbone.children if c.block == block]


def block_state(root: LayerNode, block: int) -> CheckState:
    """Whether a block's weighted layers train: all, none or some."""
    weighted = [n for n in block_layers(root, block) if n.editable]
    if not weighted:
        return "none"
    return _state(sum(1 for n in weighted if n.trainable), len(weighted))


def block_params(root: LayerNode, block: int) -> int:
    """Parameters of a block's layers."""
    return sum(n.params for n in block_layers(root, block))


def set_block_trainable(root: LayerNode, block: int, trainable: bool) -> None:
    """Switches training of every layer in a block."""
    for node in block_layers(root, block):
        if node.editable:
            set_trainable(root, node.path, trainable)


# -- as data ----------------------------------------------------------------------------
def to_dict(root: LayerNode) -> dict[str, Any]:
    """The tree as JSON-ready data (``from_dict`` reads it back)."""
    def node(n: LayerNode) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": n.name, "type": n.type_name, "shape": n.output_shape,
            "params": n.params, "trainable_params": n.trainable_params,
            "editable": n.editable, "own": n.own}
        if n.backbone_index is not None:
            out["index"] = n.backbone_index
        if n.block is not None:
            out["block"] = n.block
        if n.note:
            out["note"] = n.note
        if n.children:
            out["children"] = [node(c) for c in n.children]
        return out

    data = node(root)
    data["blocks"] = [[b.name, b.first, b.last] for b in root.blocks]
    return data


def from_dict(data: Any) -> LayerNode:
    """Reads a tree written by ``to_dict``.

    Raises:
        ValueError: the data is not such a tree (wrong types, too deep or too large).
    """
    count = 0

    def node(d: Any, path: tuple[str, ...], depth: int) -> LayerNode:
        nonlocal count
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise ValueError("layer tree too large or too deep")
        if not isinstance(d, dict):
            raise ValueError("layer tree node is not an object")
        name = _typed(d, "name", str)
        index = d.get("index")
        block = d.get("block")
        n = LayerNode(
            name=name, path=path, type_name=_typed(d, "type", str),
            output_shape=_typed(d, "shape", str), params=_typed(d, "params", int),
            trainable_params=_typed(d, "trainable_params", int),
            editable=_typed(d, "editable", bool), own=_typed(d, "own", bool),
            backbone_index=index if isinstance(index, int) else None,
            block=block if isinstance(block, int) else None,
            note=d.get("note", "") if isinstance(d.get("note", ""), str) else "")
        children = d.get("children", [])
        if not isinstance(children, list):
            raise ValueError("layer tree children is not a list")
        n.children = [node(c, (*path, _typed(c, "name", str)), depth + 1) for c in children]
        return n

    root = node(data, (), 0)
    blocks = data.get("blocks", []) if isinstance(data, dict) else []
    if not isinstance(blocks, list):
        raise ValueError("layer tree blocks is not a list")
    for b in blocks:
        if not (isinstance(b, list) and len(b) == 3 and isinstance(b[0], str)
                and isinstance(b[1], int) and isinstance(b[2], int)):
            raise ValueError("layer tree block is not [name, first, last]")
        root.blocks.append(Block(b[0], b[1], b[2]))
    return link(root)


def _typed(d: Any, key: str, kind: type) -> Any:
    if not isinstance(d, dict):
        raise ValueError("layer tree node is not an object")
    value = d.get(key)
    # bool is an int in Python; a count must not be a bool and a flag must be one.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"layer tree field {key!r} is not {kind.__name__}")
    return value


def head_note_for(path: tuple[str, ...]) -> str:
    """The note shown beside a top-level layer, by path."""
    return HEAD_NOTE if path == (HEAD_NAME,) else ""
