"""Out of memory on the accelerator: retry with half the batch instead of failing the run.

What each backend raises when a GPU runs out of memory:

- TensorFlow: ``tf.errors.ResourceExhaustedError`` ("OOM when allocating tensor ...").
- JAX: ``XlaRuntimeError`` (``jax.errors.JaxRuntimeError`` in newer releases) whose
  message starts ``RESOURCE_EXHAUSTED: Out of memory while trying to allocate ...``.
- PyTorch: ``torch.cuda.OutOfMemoryError`` ("CUDA out of memory. Tried to allocate
  ..."), a ``RuntimeError`` "MPS backend out of memory" on Apple silicon, and
  "DefaultCPUAllocator: can't allocate memory" on the CPU.

A batch that does not fit is halved, the memory the failed attempt held is released,
the user is told, and the step is run again, down to one image.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Callable
from typing import TypeVar

from tlgui.core.errors import Cancelled
from tlgui.core.events import Notice, Report

log = logging.getLogger(__name__)
T = TypeVar("T")
_MARKERS = re.compile(r"out of memory|RESOURCE_EXHAUSTED|\bOOM\b|can.t allocate memory",
                      re.IGNORECASE)
_OOM_TYPES = frozenset({"ResourceExhaustedError", "OutOfMemoryError"})


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` says that a batch did not fit in (accelerator) memory."""
    if isinstance(exc, MemoryError) or type(exc).__name__ in _OOM_TYPES:
        return True
    return _MARKERS.search(str(exc)) is not None


def with_oom_retry(fn: Callable[[int], T], batch_size: int, report: Report,
                   what: str) -> T:
    """Calls ``fn(batch_size)``, halving the batch after each out-of-memory error.

    Args:
        fn: the step; it takes the batch size to use and is run again from its start.
        batch_size: the first batch size tried.
        report: receives a ``Notice("warning", ...)`` for each smaller batch.
        what: the step in words, for the message ("computing features", "training").

    Returns:
        What ``fn`` returns.

    Raises:
        Whatever ``fn`` raises that is not an out-of-memory error, and the
        out-of-memory error itself once a batch of one image does not fit.
    """
    while True:
        try:
            return fn(batch_size)
        except Cancelled:
            raise
        except Exception as exc:
            if batch_size <= 1 or not is_out_of_memory(exc):
                raise
            smaller = max(1, batch_size // 2)
            log.warning("out of memory while %s at batch size %d: %s", what, batch_size, exc)
            report(Notice("warning", f"Out of memory while {what} with batches of "
                                     f"{batch_size}; retrying with a smaller batch of "
                                     f"{smaller}."))
        # Out of the handler, the error and its traceback, which hold on to the failed
        # attempt's tensors, are gone and their memory can be freed.
        release_accelerator_memory()
        batch_size = smaller


def release_accelerator_memory() -> None:
    """Frees what a failed attempt left: its tensors, and PyTorch's cached GPU blocks.

    TensorFlow and JAX reuse their pools for the smaller batch; PyTorch's caching
    allocator keeps freed blocks, which ``empty_cache`` hands back to the driver.
    """
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        mps = getattr(torch, "mps", None)
        if mps is not None and torch.backends.mps.is_available():
            mps.empty_cache()
    except Exception:  # freeing is best effort; the retry reports a real failure
        log.debug("could not empty the PyTorch cache", exc_info=True)
