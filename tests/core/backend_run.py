"""One small check of the engine under the Keras backend of this process (run by test_backends).

    KERAS_BACKEND=jax python -m tests.core.backend_run OUT_DIR [--export]

Prints one JSON line: what each check saw. The checks are the same for every backend:
end-to-end training on the cached frozen features, the backbone's BatchNormalization
statistics after fine-tuning (the inference-mode wrapper, ADR 002), the halving of the
batch on this backend's own out-of-memory error raised inside ``fit``, cancel within one
batch, mixed precision with a float32 checkpoint, the device recorded in the run folder,
and (``--export``) an ONNX export, which goes through TensorFlow for JAX and PyTorch.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tests.imagegen import make_dataset
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.dataset import scan
from tlgui.core.events import BatchProgress, Event, Notice, PhaseStarted
from tlgui.core.model import ClassifierModel
from tlgui.core.model_file import load_keras
from tlgui.core.oom import is_out_of_memory
from tlgui.core.phase_monitor import PhaseMonitor
from tlgui.core.precision import model_precision
from tlgui.core.training import run_training

CONFIG = TrainConfig(weights="none", image_size=32, batch_size=8, fine_tune_at=140,
                     phase1=PhaseConfig(epochs=1),
                     phase2=PhaseConfig(epochs=2, learning_rate=1e-3,
                                        early_stopping_patience=None))


def backend_oom_error() -> BaseException:
    """The error this backend raises when memory runs out, made by the backend itself.

    TensorFlow and JAX refuse an allocation of 64 TiB on the CPU with the very error
    type and message they raise for a GPU. PyTorch's CUDA error cannot happen without
    CUDA, so its class is instantiated with the message CUDA's allocator gives.
    """
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            tf.zeros((2**44,), tf.float32)
        elif backend == "jax":
            import jax.numpy as jnp

            jnp.zeros((2**44,), jnp.float32).block_until_ready()
        else:
            import torch

            return torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                "capacity of 7.78 GiB of which 1.02 GiB is free.")
    except Exception as exc:
        return exc
    raise AssertionError("a 64 TiB allocation succeeded")


def torch_cpu_oom() -> bool | None:
    """Whether PyTorch's own CPU allocation failure is recognised (None under others)."""
    if keras.backend.backend() != "torch":
        return None
    import torch

    try:
        torch.empty(2**44, dtype=torch.float32)
    except RuntimeError as exc:
        return is_out_of_memory(exc)
    raise AssertionError("a 64 TiB allocation succeeded")


def main(out: Path, export: bool) -> dict[str, Any]:
    seen: dict[str, Any] = {"backend": keras.backend.backend()}
    ds = scan(make_dataset(out / "d", per_class=8))
    cm = ClassifierModel.build(CONFIG, ds.class_names)
    cm.set_fine_tune_at(CONFIG.fine_tune_at)
    bn = next(layer for layer in cm.backbone.layers[CONFIG.fine_tune_at:]
              if "BatchNormalization" in type(layer).__name__)
    before = [np.array(w) for w in (bn.moving_mean, bn.moving_variance)]
    cm.compile(CONFIG.phase1)

    # Out of memory inside fit, once, at the first batch of phase 2.
    error = backend_oom_error()
    seen["oom_error"] = f"{type(error).__module__}.{type(error).__name__}"
    seen["oom_recognised"] = is_out_of_memory(error)
    seen["torch_cpu_oom_recognised"] = torch_cpu_oom()
    original = PhaseMonitor.on_train_batch_end
    raised: list[int] = []

    def raise_once(self: PhaseMonitor, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.phase == 2 and not raised:
            raised.append(batch)
            raise error
        original(self, batch, logs)

    PhaseMonitor.on_train_batch_end = raise_once  # type: ignore[method-assign]
    events: list[Event] = []
    try:
        result = run_training(ds, CONFIG, report=events.append, model=cm,
                              use_model_trainable=False, run_root=out / "runs")
    finally:
        PhaseMonitor.on_train_batch_end = original  # type: ignore[method-assign]
    assert result.run is not None
    seen["epochs"] = [h["epoch"] for h in result.history]
    seen["oom_notices"] = [e.message for e in events
                           if isinstance(e, Notice) and "Out of memory" in e.message]
    after = [np.array(w) for w in (bn.moving_mean, bn.moving_variance)]
    seen["bn_trainable_in_phase2"] = bool(bn.trainable)
    seen["bn_stats_unchanged"] = all(np.array_equal(a, b) for a, b in zip(before, after,
                                                                         strict=True))
    status = result.run.read_status()
    seen["status"] = {k: status.get(k) for k in ("state", "backend", "precision")}
    seen["status_device"] = (status.get("device") or {}).get("id")

    # Cancel at the first batch of phase 2: no batch may follow.
    cancel = threading.Event()
    after_cancel: list[BatchProgress] = []
    phase = [0]

    def report(e: Event) -> None:
        if isinstance(e, PhaseStarted):
            phase[0] = e.phase
        if isinstance(e, BatchProgress) and phase[0] == 2:
            if cancel.is_set():
                after_cancel.append(e)
            cancel.set()

    cancelled = run_training(ds, CONFIG, report=report, cancel=cancel, run_root=out / "runs")
    assert cancelled.run is not None
    seen["cancelled"] = cancelled.cancelled
    seen["batches_after_cancel"] = len(after_cancel)
    seen["cancel_state"] = cancelled.run.read_status().get("state")

    # Mixed precision on the CPU (forced): trains, and the checkpoint is float32.
    mixed = run_training(ds, CONFIG.replace(precision="mixed_bfloat16",
                                            phase2=PhaseConfig(epochs=1)),
                         run_root=out / "runs")
    assert mixed.run is not None
    seen["mixed_in_memory"] = model_precision(mixed.model.model)
    seen["mixed_status"] = mixed.run.read_status().get("precision")
    saved, _, _ = load_keras(mixed.run.model_path)
    seen["mixed_checkpoint"] = model_precision(saved)
    seen["mixed_output_dtype"] = str(np.asarray(
        mixed.model.model.predict(np.zeros((1, 32, 32, 3), np.uint8), verbose=0)).dtype)

    if export:
        import onnx

        from tlgui.core.export import export_run

        written = export_run(result.run.path, "onnx", out / "export" / "model.onnx")
        onnx.checker.check_model(onnx.load(str(written[0])))
        seen["onnx"] = [p.name for p in written]
    return seen


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), "--export" in sys.argv[2:])))
