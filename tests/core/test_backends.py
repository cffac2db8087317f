"""The engine behaves the same under the TensorFlow, JAX and PyTorch backends of Keras.

Each backend runs ``tests/core/backend_run.py`` in a process of its own (Keras loads one
backend per process), on the CPU. A backend that is not installed is skipped with the
reason shown by ``pytest -rs``; where ``TLGUI_REQUIRE_BACKENDS`` names it (``jax,torch``
or ``all``, as CI sets it) it fails instead. ``scripts/install_torch_cpu.sh`` installs
PyTorch's CPU build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "TLGUI_REQUIRE_BACKENDS"
MODULE = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _required(backend: str) -> bool:
    names = {n.strip() for n in os.environ.get(REQUIRE_ENV, "").split(",") if n.strip()}
    return backend in names or "all" in names


def _run(backend: str, tmp_path: Path, export: bool) -> dict[str, object]:
    if importlib.util.find_spec(MODULE[backend]) is None:
        message = (f"the {backend} backend is not installed (pip install '.[{backend}]'; "
                   "for PyTorch's CPU build: scripts/install_torch_cpu.sh)")
        if _required(backend):
            pytest.fail(f"{message}, and {REQUIRE_ENV} requires it")
        pytest.skip(message)
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               CUDA_VISIBLE_DEVICES="-1")
    args = [sys.executable, "-m", "tests.core.backend_run", str(tmp_path)]
    proc = subprocess.run([*args, "--export"] if export else args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout[-2000:]
    result: dict[str, object] = json.loads(lines[0])
    return result


# TensorFlow's own path is covered in-process by the rest of the suite; here it runs the
# same script as the others, without the export (test_export covers it).
# JAX's run takes ~55 s on two cores: left to `bash scripts/test.sh -m slow` (the suite
# stays under 20 minutes in CI); TensorFlow, the default, and torch run every time.
@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow),
                                     "torch"])
def test_engine_behaves_the_same_under(backend: str, tmp_path: Path) -> None:
    seen = _run(backend, tmp_path, export=backend != "tensorflow")
    assert seen["backend"] == backend
    # Both phases ran; phase 2 ran again whole after the out-of-memory error.
    assert seen["epochs"] == [1, 2, 3]
    assert seen["oom_recognised"] is True, seen["oom_error"]
    assert seen["oom_notices"] == ["Out of memory while training with batches of 8; "
                                   "retrying with a smaller batch of 4."]
    if backend == "torch":
        assert seen["oom_error"] == "torch.OutOfMemoryError"
        assert seen["torch_cpu_oom_recognised"] is True
    elif backend == "jax":
        assert str(seen["oom_error"]).endswith("JaxRuntimeError")
    else:
        assert str(seen["oom_error"]).endswith("ResourceExhaustedError")
    # The backbone ran in inference mode: trainable BatchNormalization kept its statistics.
    assert seen["bn_trainable_in_phase2"] is True
    assert seen["bn_stats_unchanged"] is True
    # The run folder says where it ran.
    assert seen["status"] == {"state": "complete", "backend": backend, "precision": "float32"}
    assert seen["status_device"] == "cpu"
    # Cancel takes effect within one batch and leaves a cancelled run.
    assert seen["cancelled"] is True
    assert seen["batches_after_cancel"] == 0
    assert seen["cancel_state"] == "cancelled"
    # Mixed precision: layers compute in bfloat16, outputs and checkpoint are float32.
    assert seen["mixed_in_memory"] == "mixed_bfloat16"
    assert seen["mixed_status"] == "mixed_bfloat16"
    assert seen["mixed_checkpoint"] == "float32"
    assert seen["mixed_output_dtype"] == "float32"
    if backend != "tensorflow":
        assert seen["onnx"] == ["model.onnx", "labels.txt"]
