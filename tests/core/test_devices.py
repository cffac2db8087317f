"""Device listing, selection and the environment a setting applies; GPU APIs are faked.

No GPU was available to this project: the GPU branches are checked against fakes shaped
like the documented APIs (tf.config, jax.devices, torch.cuda), the CPU path for real.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from tlgui.core import device_memory, devices
from tlgui.core.devices import DeviceInfo, select_device
from tlgui.core.errors import ConfigError

CPU = DeviceInfo("cpu", "Test CPU", "cpu", "tensorflow", 8 * 2**30, None, "cpu:0")
GPU0 = DeviceInfo("gpu:0", "NVIDIA GeForce RTX 3060", "gpu", "tensorflow", 12 * 2**30, (8, 6),
                  "gpu:0")
GPU1 = DeviceInfo("gpu:1", "Tesla T4", "gpu", "tensorflow", 16 * 2**30, (7, 5), "gpu:1")


def test_the_cpu_is_always_listed_first() -> None:
    listed = devices.list_devices("tensorflow")
    assert listed[0].id == "cpu" and listed[0].kind == "cpu"
    assert listed[0].backend == "tensorflow" and listed[0].keras_name == "cpu:0"
    assert listed[0].memory_bytes and listed[0].memory_bytes > 2**28
    # This machine has no GPU: auto falls back to the CPU.
    assert select_device("auto", listed).id == "cpu"


def test_an_unknown_backend_or_a_broken_gpu_query_leaves_the_cpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> list[DeviceInfo]:
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setitem(devices._GPU_LISTERS, "tensorflow", broken)
    assert [d.id for d in devices.list_devices("tensorflow")] == ["cpu"]
    assert [d.id for d in devices.list_devices("numpy")] == ["cpu"]


def test_tensorflow_gpus_with_names_memory_and_capability(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    physical = [types.SimpleNamespace(name="/physical_device:GPU:0"),
                types.SimpleNamespace(name="/physical_device:GPU:1")]
    details = {0: {"device_name": "NVIDIA GeForce RTX 3060", "compute_capability": (8, 6)},
               1: {"device_name": "Tesla T4", "compute_capability": (7, 5)}}
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind: physical if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda dev: details[physical.index(dev)])
    monkeypatch.setattr(devices, "nvidia_smi", lambda: devices.parse_nvidia_smi(
        "0, NVIDIA GeForce RTX 3060, 12288, 11000\n1, Tesla T4, 15360, 15000\n"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    listed = devices.list_devices("tensorflow")
    assert [(d.id, d.name, d.memory_bytes, d.compute_capability, d.keras_name)
            for d in listed[1:]] == [
        ("gpu:0", "NVIDIA GeForce RTX 3060", 12288 * 2**20, (8, 6), "gpu:0"),
        ("gpu:1", "Tesla T4", 15360 * 2**20, (7, 5), "gpu:1")]
    assert select_device("auto", listed).id == "gpu:0"
    assert select_device("1", listed).name == "Tesla T4"
    assert listed[1].label() == "GPU NVIDIA GeForce RTX 3060 (12 GB)"


def test_ids_follow_nvidia_smi_when_cuda_visible_devices_hides_some(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # configure_process("gpu:2") leaves one GPU visible: the backend calls it gpu:0.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    fake = _fake_jax([_JaxDevice("NVIDIA A100-SXM4-40GB", {"bytes_limit": 30 * 2**30}, "8.0")])
    monkeypatch.setitem(sys.modules, "jax", fake)
    listed = devices.list_devices("jax")
    assert [(d.id, d.keras_name) for d in listed] == [("cpu", "cpu:0"), ("gpu:2", "gpu:0")]
    assert select_device("gpu:2", listed).keras_name == "gpu:0"
    assert listed[1].compute_capability == (8, 0) and listed[1].memory_bytes == 30 * 2**30


def test_jax_without_a_gpu_platform_lists_the_cpu_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jax", _fake_jax(None))
    assert [d.id for d in devices.list_devices("jax")] == ["cpu"]


def test_torch_cuda_and_apple_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    props = types.SimpleNamespace(name="NVIDIA GeForce RTX 4070", total_memory=12 * 2**30,
                                  major=8, minor=9)
    cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 1,
                                 get_device_properties=lambda i: props,
                                 mem_get_info=lambda i: (9 * 2**30, 12 * 2**30))
    torch = types.SimpleNamespace(cuda=cuda, backends=types.SimpleNamespace(
        mps=types.SimpleNamespace(is_available=lambda: False)))
    monkeypatch.setitem(sys.modules, "torch", torch)
    listed = devices.list_devices("torch")
    assert [(d.id, d.keras_name, d.compute_capability) for d in listed] == [
        ("cpu", "cpu", None), ("gpu:0", "gpu:0", (8, 9))]
    assert device_memory.free_memory(listed[1]) == 9 * 2**30

    no_cuda = types.SimpleNamespace(is_available=lambda: False)
    mac = types.SimpleNamespace(cuda=no_cuda, backends=types.SimpleNamespace(
        mps=types.SimpleNamespace(is_available=lambda: True)))
    monkeypatch.setitem(sys.modules, "torch", mac)
    listed = devices.list_devices("torch")
    assert [d.id for d in listed] == ["cpu", "mps"]
    assert select_device("auto", listed).id == "mps"
    assert select_device("cpu", listed).id == "cpu"


@pytest.mark.parametrize(("setting", "expected"), [
    ("auto", "gpu:0"), (None, "gpu:0"), ("cpu", "cpu"), ("CPU", "cpu"), ("gpu", "gpu:0"),
    ("gpu:1", "gpu:1"), ("1", "gpu:1"), ("cuda:1", "gpu:1")])
def test_selection(setting: str | None, expected: str) -> None:
    assert select_device(setting, [CPU, GPU0, GPU1]).id == expected


def test_selection_of_a_missing_device_says_what_is_there() -> None:
    with pytest.raises(ConfigError, match=r"gpu:3.*available: cpu \(Test CPU\), gpu:0"):
        select_device("gpu:3", [CPU, GPU0])
    with pytest.raises(ConfigError, match="'gpu' is not available"):
        select_device("gpu", [CPU])
    with pytest.raises(ConfigError, match="Unknown device 'fastest'"):
        select_device("fastest", [CPU])


@pytest.mark.parametrize(("setting", "backend", "expected"), [
    ("auto", "tensorflow", {}),
    ("cpu", "tensorflow", {"CUDA_VISIBLE_DEVICES": "-1"}),
    ("cpu", "jax", {"CUDA_VISIBLE_DEVICES": "-1", "JAX_PLATFORMS": "cpu"}),
    ("cpu", "torch", {"CUDA_VISIBLE_DEVICES": "-1", "KERAS_TORCH_DEVICE": "cpu"}),
    ("gpu:1", "jax", {"CUDA_VISIBLE_DEVICES": "1"}),
    ("mps", "torch", {"KERAS_TORCH_DEVICE": "mps", "PYTORCH_ENABLE_MPS_FALLBACK": "1"}),
])
def test_environment_set_before_the_backend_loads(setting: str, backend: str,
                                                  expected: dict[str, str]) -> None:
    env: dict[str, str] = {}
    changes = devices.configure_process(setting, backend, env)
    assert changes == env
    assert env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "TF_FORCE_GPU_ALLOW_GROWTH": "true",
                   **expected}


def test_user_settings_are_kept_for_auto_and_overridden_by_an_explicit_choice() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0", "TF_FORCE_GPU_ALLOW_GROWTH": "false"}
    devices.configure_process("auto", "tensorflow", env)
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"
    devices.configure_process("cpu", "tensorflow", env)
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
    with pytest.raises(ConfigError):
        devices.configure_process("gpu:x", "tensorflow", env)


def test_status_text_and_run_folder_fields() -> None:
    info = devices.ComputeInfo(GPU0, "tensorflow", "3.15.1", (CPU,))
    assert info.status_text() == ("Trains on GPU NVIDIA GeForce RTX 3060 (12 GB) · "
                                  "Keras 3.15.1, tensorflow backend")
    assert devices.ComputeInfo(CPU, "jax", "3.15.1").status_text() == \
        "Trains on CPU · Keras 3.15.1, jax backend"
    assert GPU1.to_dict() == {"id": "gpu:1", "name": "Tesla T4", "kind": "gpu",
                              "backend": "tensorflow", "memory_bytes": 16 * 2**30,
                              "compute_capability": [7, 5]}


def test_describe_compute_on_this_machine_and_with_a_missing_device() -> None:
    info = devices.describe_compute("auto")
    assert info.device.id == "cpu" and info.backend == "tensorflow"
    assert devices.describe_compute("gpu:5").device.id == "cpu"  # the status bar never fails


def test_nvidia_smi_parsing_skips_what_it_cannot_read() -> None:
    rows = devices.parse_nvidia_smi("0, NVIDIA RTX A2000, 6138, 5900\n"
                                    "garbage\n1, Tesla T4, [N/A], 100\n")
    assert rows == {0: {"name": "NVIDIA RTX A2000", "total": 6138 * 2**20,
                        "free": 5900 * 2**20}}


def test_batch_sizes_fit_free_memory() -> None:
    fit = device_memory.fit_batch_size
    assert fit(128, 10 * 2**20, 4 * 2**30) == 128           # 1.3 GB of 2.4 GB usable
    assert fit(128, 10 * 2**20, 1 * 2**30) == 32            # halved until it fits
    assert fit(32, 10 * 2**30, 1 * 2**30) == 1              # never below one
    assert fit(32, 10 * 2**20, None) == 32                  # unknown memory: as asked


def test_activation_estimate_and_the_plan_on_cpu_and_gpu() -> None:
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.GlobalAveragePooling2D()])
    assert device_memory.activation_bytes(model) == (8 * 8 * 4 + 4) * 4
    assert device_memory.activation_bytes(model, 2, training=True) == (8 * 8 * 4 + 4) * 2 * 3
    # The CPU keeps its batches; a GPU gets big feature batches, capped by its memory.
    assert device_memory.plan_batches(CPU, model, 4, 16, 32) == (16, 32)
    assert device_memory.plan_batches(GPU0, model, 4, 16, 32, free_bytes=2**30) == (128, 32)
    per_image = device_memory.activation_bytes(model)
    assert device_memory.plan_batches(GPU0, model, 4, 16, 32,
                                      free_bytes=per_image * 20) == (8, 4)


def test_free_memory_of_a_jax_gpu_and_of_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_jax([_JaxDevice("NVIDIA L4", {"bytes_limit": 20 * 2**30,
                                               "bytes_in_use": 5 * 2**30}, "8.9")])
    monkeypatch.setitem(sys.modules, "jax", fake)
    gpu = DeviceInfo("gpu:0", "NVIDIA L4", "gpu", "jax", 20 * 2**30, (8, 9), "gpu:0")
    assert device_memory.free_memory(gpu) == 15 * 2**30
    free_ram = device_memory.free_memory(CPU)
    assert free_ram is not None and 0 < free_ram <= (CPU.memory_bytes or 0) * 8


class _JaxDevice:
    platform = "gpu"

    def __init__(self, kind: str, stats: dict[str, int], cc: str) -> None:
        self.device_kind, self._stats, self.compute_capability = kind, stats, cc

    def memory_stats(self) -> dict[str, int]:
        return self._stats


def _fake_jax(gpus: list[Any] | None) -> Any:
    def devices_of(platform: str | None = None) -> list[Any]:
        if platform == "gpu":
            if gpus is None:
                raise RuntimeError("Unknown backend: 'gpu' requested, but no platforms "
                                   "that are instances of gpu are present.")
            return gpus
        return [types.SimpleNamespace(platform="cpu", device_kind="cpu")]

    return types.SimpleNamespace(devices=devices_of)
