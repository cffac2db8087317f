"""Data-parallel training on several devices of one machine, through ``keras.distribution``.

The ``devices`` setting is ``1`` (the default: one device, as ``devices.select_device``
picks it), a number ``N`` (the first N devices of the chosen kind) or ``all``. With more
than one device the run uses ``keras.distribution.DataParallel``: the weights are
replicated on every device and each batch is split along its first axis, so one step
computes the same mean loss and gradient as on one device (ADR 010). Keras implements
that distribution for the JAX backend only; under TensorFlow and PyTorch a run on more
than one device is refused with a message naming the backend to use.

What this module adds to Keras' own support:

- a clear ``ConfigError`` for settings that cannot work (more devices than there are, a
  batch size the devices cannot share, a backend without the distribution);
- ``ShardedBatches``: Keras splits a batch evenly or fails, so a batch whose size the
  device count does not divide (the last, ragged one of an epoch, or one halved after an
  out-of-memory error) is padded with zero-weight rows, and the weights of its real rows
  are scaled so that the mean loss is the one of the real rows alone, as Keras itself
  does for masked entries (``keras.src.losses.loss.apply_mask``);
- ``shard_input``: the frozen-feature pass splits its batches over the devices too;
- moving a model built before the run (the window's) onto the devices and back to one
  device afterwards, so that it can be saved, evaluated and trained again as usual.

Several hosts: ``join_hosts`` (``tlgui train --multi-host``) calls
``keras.distribution.initialize`` before any computation; the devices of every process
then form one mesh, each process feeds its own rows of every batch (``ShardedBatches``),
and only the first process writes the run folder (``is_main_process``). Tested with two
processes on one machine only (ADR 010).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from tlgui.core.config import parse_devices
from tlgui.core.devices import DeviceInfo, active_backend, list_devices, normalise_setting
from tlgui.core.errors import ConfigError

PARALLEL_BACKENDS = ("jax",)


def join_hosts() -> int:
    """Joins a multi-process run: ``keras.distribution.initialize()``; returns the count.

    The coordinator comes from ``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
    ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``, or JAX
    finds it in Slurm's or Open MPI's variables. Call it before any computation.

    Raises:
        ConfigError: the backend is not JAX, or the processes could not meet.
    """
    backend = active_backend()
    if backend not in PARALLEL_BACKENDS:
        raise ConfigError(f"--multi-host needs the JAX backend (KERAS_BACKEND=jax); this "
                          f"process runs the {backend} backend.")
    import jax

    # CPU processes exchange gradients through Gloo; GPUs use NCCL whatever this says.
    with contextlib.suppress(AttributeError, ValueError):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # type: ignore[no-untyped-call]
    try:
        keras.distribution.initialize()
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"--multi-host: the processes could not join: "
                          f"{str(exc).rstrip('.')}. Set "
                          "KERAS_DISTRIBUTION_JOB_ADDRESSES (the first process's host:port), "
                          "KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID, "
                          "or start tlgui with srun.") from exc
    return int(jax.process_count())


def _processes() -> tuple[int, int]:
    """(this process's index, the process count); (0, 1) outside a multi-process run."""
    if active_backend() != "jax":
        return 0, 1
    import jax

    return int(jax.process_index()), int(jax.process_count())


def is_main_process() -> bool:
    """True but in the second and later processes of a multi-process run."""
    return _processes()[0] == 0


@dataclass(frozen=True)
class ParallelPlan:
    """The devices a run computes on.

    Attributes:
        backend: the Keras backend.
        devices: the backend's names of the devices (``gpu:0``, ``cpu:1``...); one
            name means a plain single-device run.
    """

    backend: str
    devices: tuple[str, ...]

    @property
    def count(self) -> int:
        """How many devices share each batch."""
        return len(self.devices)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, for the run folder's ``status.json``."""
        return {"count": self.count, "devices": list(self.devices)}


def backend_devices(kind: str, backend: str) -> list[str]:
    """The names ``keras.distribution`` gives the devices of ``kind`` (``cpu`` or ``gpu``).

    JAX is asked through Keras (virtual CPU devices included); the other backends through
    ``devices.list_devices``, only to say how many there are.
    """
    if backend != "jax":
        found = [d for d in list_devices(backend) if d.is_gpu == (kind == "gpu")]
        return [d.keras_name for d in found]
    try:
        return [str(d) for d in keras.distribution.list_devices(kind)]
    except RuntimeError:  # JAX raises for a platform it does not have
        return []


def plan_devices(setting: str | int | None, device_setting: str | None, device: DeviceInfo,
                 batch_size: int, backend: str | None = None,
                 available: list[str] | None = None) -> ParallelPlan:
    """The devices a run will share its batches over, checked before any work.

    Args:
        setting: the ``devices`` setting (``1``, ``N`` or ``all``).
        device_setting: the ``device`` setting (``auto``, ``cpu``, ``gpu``, ``gpu:N``).
        device: the device ``select_device`` picked; its kind (CPU or GPU) is the kind
            of every device used.
        batch_size: the configured batch size: each device takes an equal share.
        backend: the Keras backend (default: the active one).
        available: the backend's device names of that kind (default: asked from it).

    Raises:
        ConfigError: more devices than there are, a backend without data parallelism,
            a single-device ``device`` setting with several devices, or a batch size
            the device count does not divide. Each message says what to change.
    """
    wanted = parse_devices(setting)
    backend = backend or active_backend()
    if wanted == 1:
        return ParallelPlan(backend, (device.keras_name,))
    if available is None:
        available = backend_devices("gpu" if device.is_gpu else "cpu", backend)
    if backend not in PARALLEL_BACKENDS:
        if wanted is None and len(available) <= 1:
            return ParallelPlan(backend, (device.keras_name,))
        raise ConfigError(
            f"Training on several devices (--devices {setting}) needs the JAX backend; "
            f"this process runs the {backend} backend, whose Keras distribution is not "
            "implemented. Start tlgui with KERAS_BACKEND=jax (GPU: pip install "
            "'jax[cuda12]'), or train on one device (--devices 1).")
    value = normalise_setting(device_setting)
    if value not in ("auto", "cpu", "gpu"):
        raise ConfigError(
            f"--device {device_setting} names one device, and --devices {setting} asks for "
            "several: use --device auto (the GPUs) and choose which GPUs with "
            "CUDA_VISIBLE_DEVICES (for example CUDA_VISIBLE_DEVICES=1,2).")
    kind = "GPU" if device.is_gpu else "CPU"
    count = len(available) if wanted is None else wanted
    if count > len(available):
        raise ConfigError(
            f"--devices {setting}: only {len(available)} {kind} device(s) are available to "
            f"the {backend} backend ({', '.join(available) or 'none'}). Use --devices "
            f"{max(1, len(available))} or --devices all.")
    if count > 1 and batch_size % count:
        lower = batch_size // count * count
        sizes = " or ".join(str(s) for s in (lower, lower + count) if s > 0)
        raise ConfigError(
            f"--batch-size {batch_size} cannot be shared equally by {count} devices: "
            f"use a multiple of {count} ({sizes}).")
    if count <= 1:
        return ParallelPlan(backend, (device.keras_name,))
    return ParallelPlan(backend, tuple(available[:count]))


# -- the run ---------------------------------------------------------------------------
@contextlib.contextmanager
def parallel_scope(plan: ParallelPlan, models: list[Any]) -> Iterator[None]:
    """Runs the block on the plan's devices.

    One device: ``keras.device`` places variables and computations there. Several: the
    block runs under ``keras.distribution.DataParallel``; models built inside it get
    replicated variables, and the variables of ``models`` (built before) are replicated
    on entry. On exit every model in ``models`` (append the ones built inside the block)
    is brought back to one device, so that later work needs no distribution.
    """
    if plan.count == 1:
        with keras.device(plan.devices[0]):
            yield
        return
    # tlgui's batches are PyDatasets, which Keras does not split between processes
    # (ShardedBatches does).
    distribution = keras.distribution.DataParallel(devices=list(plan.devices),
                                                   auto_shard_dataset=False)
    with distribution.scope():
        try:
            for model in models:
                _place(model, distribution)
            yield
        finally:
            for model in models:
                _place(model, None)


def _place(model: Any, distribution: Any) -> None:
    """Replicates a model's variables over the distribution's devices, or (None) moves
    them back to the default device.

    A variable takes its layout from the distribution when it is created; one created
    before has none, and mixing both in one compiled step fails ("incompatible
    devices"). ``_layout`` is the JAX variable's own record of it (keras/src/backend/
    jax/core.py); assigning the value again puts it where the layout says.
    """
    for v in model.variables:
        v._layout = distribution.get_variable_layout(v) if distribution is not None else None
        v.assign(np.asarray(v.value) if distribution is None else v.value)


def shard_input(x: Any) -> Any:
    """``x`` split along its first axis over the devices of the current distribution.

    Outside a distribution ``x`` comes back unchanged. A batch the devices cannot share
    equally gets zero rows appended first: the result may have more rows than ``x``,
    and the caller keeps the outputs of the first ``len(x)`` only.
    """
    distribution = keras.distribution.distribution()
    if distribution is None:
        return x
    shards = distribution.device_mesh.shape[0]
    x = np.asarray(x)
    pad = -len(x) % shards
    if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    return keras.distribution.distribute_tensor(x, distribution.get_data_layout(x.shape))


def predict_batch(net: Any, x: Any) -> Any:
    """``net.predict_on_batch(x)``, with ``x`` split over the devices of the distribution.

    Under a distribution Keras compiles the prediction with the layout of the trainable
    and the other variables as two lists, fixed when it is first compiled; the feature
    network outlives phase 1, and phase 2 makes some of its layers trainable, so its
    prediction is compiled again when that split changes.
    """
    if keras.distribution.distribution() is None:
        return net.predict_on_batch(x)
    split = len(net.trainable_variables)
    if _processes()[1] > 1:
        # Split outputs would live partly in other processes; every process computes the
        # whole batch instead (the features are not split between hosts).
        split = -split - 1
        if getattr(net, "_tlgui_trainable_count", None) != split:
            net.predict_function = None
            net._tlgui_trainable_count = split
        return net.predict_on_batch(x)
    if getattr(net, "_tlgui_trainable_count", None) != split:
        net.predict_function = None
        net._tlgui_trainable_count = split
    return net.predict_on_batch(shard_input(x))


def accuracy_metrics() -> dict[str, list[str]]:
    """The ``compile`` argument that asks for accuracy.

    Keras weighs only ``weighted_metrics`` by the sample weights; under a distribution
    the zero-weight rows that pad a batch (``ShardedBatches``) must not count, so there
    the accuracy is a weighted one. Every real row weighs 1 in validation, so the
    validation accuracy is the single-device one exactly.
    """
    if keras.distribution.distribution() is None:
        return {"metrics": ["accuracy"]}
    return {"weighted_metrics": ["accuracy"]}


class ArrayBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """Validation arrays ``(x, y)`` in batches, in order."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int) -> None:
        super().__init__()
        self.x, self.y, self.batch = x, y, batch

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rows = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[rows], self.y[rows]


class ShardedBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """Another ``PyDataset``'s batches, each padded to a multiple of ``shards`` rows.

    Every batch carries sample weights (ones where the inner one has none), so that all
    batches have one structure. Padding rows repeat the batch's first row with weight 0;
    for training the real rows' weights are scaled by ``padded / real``, which keeps the
    batch's mean loss (a sum divided by the ``padded`` row count) that of the real rows.
    Validation keeps weights of 1: the accuracy, a weighted mean, is then exact.
    """

    def __init__(self, inner: Any, shards: int, training: bool,
                 process: tuple[int, int] = (0, 1)) -> None:
        super().__init__()
        self.inner, self.shards, self.training = inner, shards, training
        self.process = process

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        got = self.inner[i]
        x, y = got[0], got[1]
        n = len(y)
        w = np.asarray(got[2], np.float32) if len(got) > 2 else np.ones(n, np.float32)
        pad = -n % self.shards
        if pad:
            if self.training:
                w = w * np.float32((n + pad) / n)
            x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
            y = np.concatenate([y, np.repeat(y[:1], pad, axis=0)])
            w = np.concatenate([w, np.zeros(pad, np.float32)])
        index, count = self.process
        if count == 1:
            return x, y, w
        # Each process feeds the rows of its own devices, in the mesh's order.
        part = slice(index * len(y) // count, (index + 1) * len(y) // count)
        return x[part], y[part], w[part]

    def on_epoch_begin(self) -> None:
        hook = getattr(self.inner, "on_epoch_begin", None)
        if hook is not None:
            hook()

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()


def for_devices(train: Any, val: Any, batch: int) -> tuple[Any, Any]:
    """The training and validation data of ``fit``, ready for the current distribution.

    Args:
        train: a ``keras.utils.PyDataset``.
        val: a ``PyDataset``, a tuple ``(x, y)`` of arrays, or None.
        batch: the batch size (for validation arrays).

    Returns:
        ``(train, val)`` unchanged outside a distribution; else wrapped in
        ``ShardedBatches`` (see there).
    """
    distribution = keras.distribution.distribution()
    if distribution is None:
        return train, val
    shards = distribution.device_mesh.shape[0]
    if isinstance(val, tuple):
        val = ArrayBatches(val[0], val[1], batch)
    process = _processes()
    return (ShardedBatches(train, shards, True, process),
            None if val is None else ShardedBatches(val, shards, False, process))
