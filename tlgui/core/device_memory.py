"""Device memory: what is free, what a batch needs, and the batch sizes a GPU run uses.

On a GPU the frozen-feature pass takes batches of up to ``GPU_FEATURE_BATCH`` images and
the training batch is capped so that its estimated activations fit in the free memory;
an estimate that is still too large is caught by the halving on out-of-memory (oom.py).
The CPU keeps the batch sizes tuned for it. Written against the backends' documented
memory queries and tested with them faked: no GPU was available to verify them.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from tlgui.core.devices import DeviceInfo, _call, nvidia_smi

log = logging.getLogger(__name__)
# Images per pass of the frozen network on a GPU, at most: a GPU needs big batches to be
# busy, and inference batches do not change what is learnt.
GPU_FEATURE_BATCH = 128


def free_memory(device: DeviceInfo) -> int | None:
    """Bytes free on ``device`` now, or None when the backend cannot tell."""
    if not device.is_gpu:
        return _available_system_memory()
    try:
        if device.backend == "torch" and device.id != "mps":
            import torch

            free, _ = torch.cuda.mem_get_info(int(device.keras_name.split(":")[1]))
            return int(free)
        if device.backend == "jax":
            import jax

            dev = jax.devices("gpu")[int(device.keras_name.split(":")[1])]
            stats = _call(dev, "memory_stats") or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    except Exception:
        log.warning("cannot query free memory of %s", device.id, exc_info=True)
    if device.id.startswith("gpu:"):
        row = nvidia_smi().get(int(device.id.split(":")[1]))
        if row:
            return int(row["free"])
    return None


def _available_system_memory() -> int | None:
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def fit_batch_size(wanted: int, bytes_per_item: int, free_bytes: int | None,
                   share: float = 0.6, minimum: int = 1) -> int:
    """The largest batch up to ``wanted`` whose estimated memory fits in free memory.

    Args:
        wanted: the batch asked for.
        bytes_per_item: estimated device memory one item needs (``activation_bytes``).
        free_bytes: free device memory; None leaves ``wanted`` as it is.
        share: the part of the free memory a batch may take (the rest is for the
            weights, the optimizer state, the allocator's slack and other programs).
        minimum: never below this.

    Returns:
        ``wanted`` halved until it fits (halving keeps compiled shapes few).
    """
    batch = max(minimum, int(wanted))
    if free_bytes is None or bytes_per_item <= 0:
        return batch
    budget = free_bytes * share
    while batch > minimum and batch * bytes_per_item > budget:
        batch = max(minimum, batch // 2)
    return batch


def activation_bytes(model: Any, dtype_bytes: int = 4, training: bool = False) -> int:
    """Estimated device memory per image of a forward pass through ``model``.

    The sum of every layer's output size: an upper bound for inference (an allocator
    frees most of them as it goes) and about what training keeps for the backward pass,
    which is counted three times (activations, their gradients, workspace).
    """
    total = 0
    for layer in getattr(model, "layers", []):
        try:
            outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        except (AttributeError, ValueError):  # a layer used twice has no single output
            continue
        for t in outputs:
            n = 1
            for d in tuple(t.shape)[1:]:
                n *= int(d or 1)
            total += n
    return total * dtype_bytes * (3 if training else 1)


def plan_batches(device: DeviceInfo, backbone: Any, dtype_bytes: int, feature_batch: int,
                 train_batch: int, free_bytes: int | None = None) -> tuple[int, int]:
    """(feature batch, training batch) for a run on ``device``.

    Args:
        device: where the run computes; on a CPU both batches come back unchanged.
        backbone: the backbone model, whose layer outputs estimate the memory per image.
        dtype_bytes: bytes per activation value (2 under mixed precision, else 4).
        feature_batch: the CPU's feature batch.
        train_batch: the configured training batch.
        free_bytes: free device memory; None queries it (``free_memory``).
    """
    if not device.is_gpu:
        return feature_batch, train_batch
    free = free_memory(device) if free_bytes is None else free_bytes
    features = fit_batch_size(GPU_FEATURE_BATCH, activation_bytes(backbone, dtype_bytes), free)
    train = fit_batch_size(train_batch, activation_bytes(backbone, dtype_bytes, True), free)
    log.info("batches on %s: features %d, training %d (free memory %s bytes)", device.id,
             features, train, free)
    return features, train
