"""Giving memory back to the operating system between the stages of a run."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys

log = logging.getLogger(__name__)
_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Caps glibc's per-thread malloc arenas; returns whether the cap took effect.

    TensorFlow's thread pools each get an arena of their own by default (up to eight per
    core) and freed tensors stay spread over them: a run's resident size measured 65 MB
    lower with two arenas (docs/benchmarks.md), at the same speed. It has to run before
    TensorFlow starts its threads, as the ``MALLOC_ARENA_MAX`` variable would.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def release_memory() -> None:
    """Collects garbage and, on glibc, returns freed heap pages to the system.

    A stage leaves many freed blocks behind (TensorFlow's CPU tensors come from malloc);
    glibc keeps them mapped, so without a trim the resident size only ever grows and
    the peak of a run is the sum of its stages, not the largest one. A full collection
    takes ~0.2 s with TensorFlow loaded: call it between stages, not in loops.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        log.debug("malloc_trim is not available")
