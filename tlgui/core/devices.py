"""The devices the Keras backend can train on: list them, pick one, apply the choice.

The device setting is ``auto`` (the first GPU, else the CPU), ``cpu``, or a device id as
listed (``gpu:0``, ``gpu:1``, ``mps``). Ids of NVIDIA GPUs are ``nvidia-smi``'s indices:
``configure_process`` sets ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so that every backend numbers
them the same way.

How a choice takes effect depends on the backend, and most of it only before the backend
is imported (``configure_process``, called by the engine process and the CLI before
Keras loads): ``cpu`` hides the GPUs (``CUDA_VISIBLE_DEVICES=-1``, ``JAX_PLATFORMS=cpu``,
``KERAS_TORCH_DEVICE=cpu``, the last also covering Apple's MPS); a GPU id makes that GPU
the only visible one. TensorFlow is told to allocate GPU memory as it needs it rather than
all at once, so a TensorFlow imported beside JAX or PyTorch (for exports) leaves them room.
Inside the process ``run_training`` also wraps the run in ``keras.device``, which places
new variables and computations on the chosen device for all three backends.

GPU code paths here were written against the backends' documented APIs and tested with
those APIs faked; no GPU was available to verify them (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from tlgui.core.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("tensorflow", "jax", "torch")
DeviceKind = Literal["cpu", "gpu"]
_GPU_ID = re.compile(r"^(?:gpu|cuda)?:?(\d+)$")


@dataclass(frozen=True)
class DeviceInfo:
    """One device a backend can compute on.

    Attributes:
        id: what the device setting names: ``cpu``, ``gpu:N`` (N as ``nvidia-smi``
            numbers the GPU) or ``mps`` (Apple silicon under PyTorch).
        name: the product name (``NVIDIA GeForce RTX 4070``) or the CPU's model.
        kind: ``cpu`` or ``gpu``.
        backend: the Keras backend that sees it.
        memory_bytes: total memory of the device (system memory for the CPU), or None
            when the backend does not say.
        compute_capability: CUDA compute capability, (major, minor), or None.
        keras_name: the name ``keras.device`` takes inside this process (``gpu:0`` is
            the first visible GPU, which may be ``gpu:2`` as ``nvidia-smi`` counts).
    """

    id: str
    name: str
    kind: DeviceKind
    backend: str
    memory_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    keras_name: str = "cpu:0"

    @property
    def is_gpu(self) -> bool:
        """True for a GPU (CUDA or Apple MPS)."""
        return self.kind == "gpu"

    def label(self) -> str:
        """``GPU NVIDIA GeForce RTX 4070 (12 GB)`` or ``CPU`` (for status lines)."""
        if not self.is_gpu:
            return "CPU"
        memory = f" ({self.memory_bytes / 2**30:.0f} GB)" if self.memory_bytes else ""
        return f"GPU {self.name}{memory}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, for run folders."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "backend": self.backend,
                "memory_bytes": self.memory_bytes,
                "compute_capability": list(self.compute_capability)
                if self.compute_capability else None}


@dataclass(frozen=True)
class ComputeInfo:
    """What training will run on: the device, the backend and the Keras version."""

    device: DeviceInfo
    backend: str
    keras_version: str
    others: tuple[DeviceInfo, ...] = ()

    def status_text(self) -> str:
        """One line for the status bar."""
        return (f"Trains on {self.device.label()} · Keras {self.keras_version}, "
                f"{self.backend} backend")


def active_backend() -> str:
    """The Keras backend of this process, without importing Keras when it is not loaded."""
    keras = sys.modules.get("keras")
    if keras is not None:
        with contextlib.suppress(Exception):
            return str(keras.backend.backend())
    return os.environ.get("KERAS_BACKEND", "tensorflow").strip().lower() or "tensorflow"


# -- listing -----------------------------------------------------------------------------
def list_devices(backend: str | None = None) -> list[DeviceInfo]:
    """The devices the backend sees: the CPU first, then its GPUs.

    Args:
        backend: ``tensorflow``, ``jax`` or ``torch``; None means the active one.

    Returns:
        At least the CPU. A GPU the backend cannot query (broken driver, no CUDA
        libraries) is left out and the reason logged: training then uses the CPU.
    """
    backend = backend or active_backend()
    devices = [cpu_device(backend)]
    try:
        devices += _GPU_LISTERS.get(backend, _no_gpus)()
    except Exception:
        log.warning("cannot list the GPUs of the %s backend", backend, exc_info=True)
    return devices


def cpu_device(backend: str) -> DeviceInfo:
    """The CPU, with the system's memory."""
    # PyTorch takes "cpu:0" for another device than "cpu": Keras' torch variables
    # created under keras.device("cpu:0") become copies that cannot be frozen.
    name = "cpu" if backend == "torch" else "cpu:0"
    return DeviceInfo("cpu", _cpu_name(), "cpu", backend, _system_memory(), None, name)


def _no_gpus() -> list[DeviceInfo]:
    return []


def _physical_ids() -> list[int] | None:
    """``CUDA_VISIBLE_DEVICES`` as physical GPU indices, when it lists plain numbers."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None or not value.strip():
        return None
    parts = [p.strip() for p in value.split(",")]
    if not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


def _gpu_id(logical: int) -> str:
    ids = _physical_ids()
    return f"gpu:{ids[logical] if ids and logical < len(ids) else logical}"


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hides what C++ libraries write to file descriptor 2 meanwhile.

    TensorFlow's first GPU query logs "failed call to cuInit" through absl on every
    machine without an NVIDIA driver, before its log level applies; it means nothing
    to a user, and the answer (no GPU) is what the caller wants.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (a windowed app): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _tensorflow_gpus() -> list[DeviceInfo]:
    import tensorflow as tf

    smi = nvidia_smi()
    out = []
    with _quiet_stderr():
        gpus = tf.config.list_physical_devices("GPU")
    for i, dev in enumerate(gpus):
        details = tf.config.experimental.get_device_details(dev) or {}
        cc = details.get("compute_capability")
        gid = _gpu_id(i)
        row = smi.get(int(gid.split(":")[1]), {})
        out.append(DeviceInfo(gid, str(details.get("device_name") or row.get("name") or dev.name),
                              "gpu", "tensorflow", row.get("total"),
                              (int(cc[0]), int(cc[1])) if cc else None, f"gpu:{i}"))
    return out


def _jax_gpus() -> list[DeviceInfo]:
    import jax

    try:
        gpus = jax.devices("gpu")
    except RuntimeError:  # no GPU platform: JAX says so by raising
        return []
    out = []
    for i, dev in enumerate(gpus):
        stats = _call(dev, "memory_stats") or {}
        cc = _parse_cc(getattr(dev, "compute_capability", None))
        out.append(DeviceInfo(_gpu_id(i), str(dev.device_kind), "gpu", "jax",
                              stats.get("bytes_limit"), cc, f"gpu:{i}"))
    return out


def _torch_gpus() -> list[DeviceInfo]:
    import torch

    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append(DeviceInfo(_gpu_id(i), str(props.name), "gpu", "torch",
                                  int(props.total_memory), (int(props.major), int(props.minor)),
                                  f"gpu:{i}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        # Apple's GPU shares the system memory.
        out.append(DeviceInfo("mps", "Apple GPU (Metal)", "gpu", "torch", _system_memory(),
                              None, "mps"))
    return out


_GPU_LISTERS = {"tensorflow": _tensorflow_gpus, "jax": _jax_gpus, "torch": _torch_gpus}


def _call(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)()
    except Exception:  # not every platform implements memory statistics
        return None


def _parse_cc(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) >= 2:
        return int(value[0]), int(value[1])
    match = re.match(r"^(\d+)\.(\d+)", str(value))
    return (int(match.group(1)), int(match.group(2))) if match else None


def nvidia_smi() -> dict[int, dict[str, Any]]:
    """``nvidia-smi``'s view: {index: {name, total, free (bytes)}}; empty without it."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {}
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,memory.free",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> dict[int, dict[str, Any]]:
    """Parses ``index, name, memory.total, memory.free`` CSV lines (MiB) from nvidia-smi."""
    rows: dict[int, dict[str, Any]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        try:
            rows[int(parts[0])] = {"name": parts[1], "total": int(float(parts[2]) * 2**20),
                                   "free": int(float(parts[3]) * 2**20)}
        except ValueError:
            continue
    return rows


def _cpu_name() -> str:
    with contextlib.suppress(OSError), \
            open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "CPU"


def _system_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


# -- selection and applying it -----------------------------------------------------------
def normalise_setting(setting: str | None) -> str:
    """``auto``, ``cpu``, ``mps`` or ``gpu:N`` from what a user typed.

    Raises:
        ConfigError: the setting is none of these.
    """
    value = (setting or "auto").strip().lower()
    if value in ("auto", "cpu", "mps", "gpu"):
        return value
    match = _GPU_ID.match(value)
    if match:
        return f"gpu:{int(match.group(1))}"
    raise ConfigError(f"Unknown device '{setting}': use auto, cpu, gpu:N (as listed by "
                      "'tlgui devices') or mps.")


def select_device(setting: str | None, devices: list[DeviceInfo] | None = None) -> DeviceInfo:
    """The device a setting picks among ``devices`` (default: ``list_devices()``).

    ``auto`` takes the first GPU, else the CPU; ``cpu`` the CPU; ``gpu`` the first GPU;
    ``gpu:N`` or ``mps`` that device.

    Raises:
        ConfigError: the setting names a device that is not there; the message lists
            the devices that are.
    """
    value = normalise_setting(setting)
    devices = devices if devices is not None else list_devices()
    cpu = next((d for d in devices if not d.is_gpu), None)
    gpus = [d for d in devices if d.is_gpu]
    if value == "auto":
        chosen = gpus[0] if gpus else cpu
    elif value == "cpu":
        chosen = cpu
    elif value == "gpu":
        chosen = gpus[0] if gpus else None
    else:
        chosen = next((d for d in gpus if d.id == value), None)
    if chosen is None:
        listed = ", ".join(f"{d.id} ({d.name})" for d in devices) or "none"
        raise ConfigError(f"The device '{setting}' is not available to the "
                          f"{devices[0].backend if devices else active_backend()} backend; "
                          f"available: {listed}.")
    return chosen


def configure_process(setting: str | None, backend: str | None = None,
                      environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Sets the environment that makes the backend use the chosen device.

    Call it before Keras (or the backend) is imported: the variables are read once, at
    import. Already set variables are kept for ``auto``; an explicit setting wins.

    Args:
        setting: ``auto``, ``cpu``, ``gpu:N`` or ``mps``.
        backend: the backend that will be imported (default: ``$KERAS_BACKEND``).
        environ: the environment to change (default ``os.environ``).

    Returns:
        The variables set.

    Raises:
        ConfigError: an unknown setting.
    """
    env = os.environ if environ is None else environ
    value = normalise_setting(setting)
    backend = (backend or env.get("KERAS_BACKEND") or "tensorflow").lower()
    changes: dict[str, str] = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                               "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    changes = {k: v for k, v in changes.items() if k not in env}
    if value == "cpu":
        changes["CUDA_VISIBLE_DEVICES"] = "-1"
        if backend == "jax":
            changes["JAX_PLATFORMS"] = "cpu"
        if backend == "torch":
            changes["KERAS_TORCH_DEVICE"] = "cpu"
    elif value.startswith("gpu:"):
        changes["CUDA_VISIBLE_DEVICES"] = value.split(":")[1]
    elif value == "mps" and backend == "torch":
        changes["KERAS_TORCH_DEVICE"] = "mps"
        # Operators MPS lacks run on the CPU instead of failing the run.
        changes.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    if "keras" in sys.modules and any(k != "CUDA_DEVICE_ORDER" for k in changes):
        log.warning("device setting %s applied after Keras was imported; it may not take "
                    "effect until tlgui starts again", value)
    env.update(changes)
    return changes


def describe_compute(setting: str | None = "auto") -> ComputeInfo:
    """The device training would use now, the backend and the Keras version (imports Keras).

    A device setting naming a missing device describes the CPU instead of raising: the
    status bar must always show something.
    """
    import keras

    backend = str(keras.backend.backend())
    devices = list_devices(backend)
    try:
        device = select_device(setting, devices)
    except ConfigError:
        device = devices[0]
    return ComputeInfo(device, backend, str(keras.__version__),
                       tuple(d for d in devices if d != device))
