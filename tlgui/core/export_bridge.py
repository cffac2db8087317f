"""Exports of a model trained under JAX or PyTorch, converted through TensorFlow.

SavedModel, TFLite and ONNX are written by TensorFlow's converters, which trace the
model as TensorFlow graphs: only a model living in the TensorFlow backend can be traced.
Keras loads one backend per process, so under another backend the model is saved as a
``.keras`` file (backend-neutral) and a second tlgui process, started with the TensorFlow
backend, runs ``tlgui export`` on it. TensorFlow is a dependency of every tlgui install,
so the converters are always there; the child only needs the CPU.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tlgui.core.errors import Cancelled, ExportError
from tlgui.core.events import Report, StageProgress
from tlgui.core.model_file import save_keras

log = logging.getLogger(__name__)
# Seconds a conversion may take before it is given up (a TFLite conversion of the
# largest backbone takes a few minutes on two cores).
TIMEOUT_S = 1800


def tlgui_command() -> list[str]:
    """The command that runs tlgui's CLI in a new process, from a venv or a bundle."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "tlgui"]


def export_through_tensorflow(model: Any, names: tuple[str, ...], image_size: int, fmt: str,
                              out: Path, outputs: list[Path], report: Report,
                              cancel: threading.Event,
                              extra: dict[str, Any] | None = None, *,
                              overwrite: bool = False) -> list[Path]:
    """Writes ``fmt`` at ``out`` by running ``tlgui export`` under the TensorFlow backend.

    Args:
        model: the float32 classifier of the current (non-TensorFlow) backend.
        names: class names in output order.
        image_size: the model's square input size.
        fmt: ``savedmodel``, ``tflite`` or ``onnx``.
        out: destination, as for ``export_model``.
        outputs: the paths the export writes, main one first.
        report: receives ``StageProgress("export", ...)``.
        cancel: set it to stop the conversion; nothing is written then.
        extra: metadata kept in the intermediate ``.keras`` file.
        overwrite: the user agreed to replace existing files (checked before this call).

    Returns:
        ``outputs``.

    Raises:
        ExportError: the conversion failed; the message carries the child's reason.
        Cancelled: ``cancel`` was set.
    """
    report(StageProgress("export", 0, 2, "Converting through TensorFlow (a second process)"))
    with tempfile.TemporaryDirectory(prefix="tlgui-export-") as work:
        source = Path(work) / "model.keras"
        save_keras(model, source, names, {**(extra or {}), "image_size": image_size})
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TLGUI_BACKEND="tensorflow",
                   CUDA_VISIBLE_DEVICES="-1")
        cmd = [*tlgui_command(), "export", str(source), "--format", fmt, "--out", str(out),
               *(["--overwrite"] if overwrite else [])]
        log.info("exporting through TensorFlow: %s", " ".join(cmd))
        err_path = Path(work) / "stderr.txt"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                    stdin=subprocess.DEVNULL)
            started = time.monotonic()
            while proc.poll() is None:
                if cancel.is_set() or time.monotonic() - started > TIMEOUT_S:
                    proc.kill()
                    proc.wait()
                    if cancel.is_set():
                        raise Cancelled("Export cancelled.")
                    raise ExportError(f"The {fmt} export to {out} took over {TIMEOUT_S} s "
                                      "and was stopped.")
                time.sleep(0.1)
        if proc.returncode != 0:
            lines = err_path.read_text("utf-8", errors="replace").strip().splitlines()
            reason = next((ln for ln in reversed(lines) if ln.startswith("error:")),
                          lines[-1] if lines else f"exit code {proc.returncode}")
            raise ExportError(f"The {fmt} export to {out} failed in the TensorFlow "
                              f"converter process: {reason}")
    missing = [p for p in outputs if not p.exists()]
    if missing:
        raise ExportError(f"The {fmt} export did not write {', '.join(map(str, missing))}.")
    report(StageProgress("export", 2, 2, f"Exported {outputs[0].name}"))
    return outputs
