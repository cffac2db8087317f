"""JSON read from files anyone could have written: bounded in nesting as well as size.

Python's parser recurses once per nesting level, so ``[[[[...`` a hundred thousand deep
raises ``RecursionError`` (not a ``ValueError``, so callers that catch bad JSON miss
it), and data nested a few hundred deep parses but breaks any code that walks it
recursively afterwards. Both become a ``ValueError`` here.
"""

from __future__ import annotations

import json
from typing import Any

# Deeper than anything tlgui writes (a run's config nests three levels).
MAX_DEPTH = 20


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of JSON data, stopping as soon as ``limit`` is passed (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def loads_bounded(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parses UTF-8 JSON nested at most ``max_depth`` levels.

    Raises:
        ValueError: not UTF-8, not JSON, or nested too deeply (the reason in words).
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError as exc:  # the parser's own guard on absurd nesting
        raise ValueError("it is nested too deeply") from exc
    if json_depth(value, max_depth) > max_depth:
        raise ValueError(f"it is nested more than {max_depth} levels deep")
    return value
