"""What training runs on, as the engine tells the window (device, backend, Keras version)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from typing import Any

log = logging.getLogger(__name__)


def _nvidia_memory_gb() -> float | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                              "-i", "0"], capture_output=True, text=True, timeout=5, check=True)
        return float(out.stdout.strip().splitlines()[0]) / 1024
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def describe_device(backend: str) -> str:
    """``GPU <name> (<memory>)`` for the first GPU the backend sees, else ``CPU``."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return "CPU"
            details = tf.config.experimental.get_device_details(gpus[0])
            name = details.get("device_name") or gpus[0].name
            mem = _nvidia_memory_gb()
            return f"GPU {name}" + (f" ({mem:.0f} GB)" if mem else "")
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform != "gpu":
                return "CPU"
            limit = (dev.memory_stats() or {}).get("bytes_limit")
            return f"GPU {dev.device_kind}" + (f" ({limit / 2**30:.0f} GB)" if limit else "")
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return "CPU"
            props = torch.cuda.get_device_properties(0)
            return f"GPU {props.name} ({props.total_memory / 2**30:.0f} GB)"
    except Exception:  # a broken driver must not stop the engine; training falls back to CPU
        log.warning("cannot query the GPU", exc_info=True)
    return "CPU"


def describe_compute() -> dict[str, Any]:
    """The device, backend and Keras version, with a line for the status bar."""
    import keras

    backend = keras.backend.backend()
    device = describe_device(backend)
    return {"device": device, "backend": backend, "keras_version": keras.__version__,
            "status": f"Trains on {device} · Keras {keras.__version__}, {backend} backend"}
