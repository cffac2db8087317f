"""Counting words for messages: "1 image", "8 images", never "image(s)"."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` followed by the noun in the right number.

    Args:
        count: how many.
        singular: the noun for one ("image").
        plural_form: the noun for several; ``singular + "s"`` when not given.

    Returns:
        For example "1 image", "0 images", "1,200 images".
    """
    noun = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {noun}"
