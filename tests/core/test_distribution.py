"""Data-parallel training (ADR 010): the same result on two devices as on one, clear refusals.

The two-device run needs JAX (``keras.distribution`` is implemented for it only); it runs
``tests/core/parallel_run.py`` in a process of its own with two virtual CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``). Without JAX it is skipped with
the reason shown by ``pytest -rs``, or fails where ``TLGUI_REQUIRE_BACKENDS`` names jax
(as for test_backends).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.core.test_backends import REPO, REQUIRE_ENV, _required
from tlgui.cli import build_parser
from tlgui.cli_train import train_config
from tlgui.core.config import TrainConfig, check_train_config, parse_devices
from tlgui.core.devices import DeviceInfo
from tlgui.core.distribution import ShardedBatches, plan_devices
from tlgui.core.errors import ConfigError

CPU = DeviceInfo("cpu", "CPU", "cpu", "jax", None, None, "cpu:0")
GPU = DeviceInfo("gpu:0", "GPU", "gpu", "jax", None, None, "gpu:0")
# Weights after 3 epochs agree to float32 rounding (3.5e-10 measured, of weights up to 1).
WEIGHT_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    if importlib.util.find_spec("jax") is None:
        message = "JAX is not installed (pip install '.[jax]'): data parallelism needs it"
        if _required("jax"):
            pytest.fail(f"{message}, and {REQUIRE_ENV} requires it")
        pytest.skip(message)
    out = tmp_path_factory.mktemp("parallel")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="-1",
               XLA_FLAGS="--xla_force_host_platform_device_count=2",
               TLGUI_DATA_DIR=str(out / "data"))
    proc = subprocess.run([sys.executable, "-m", "tests.core.parallel_run", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout[-2000:]
    result: dict[str, object] = json.loads(lines[0])
    return result


# The two-device run takes ~40 s: `bash scripts/test.sh -m slow` (suite under 20 minutes).
@pytest.mark.slow
def test_two_devices_train_as_one(two_devices: dict[str, object]) -> None:
    seen = two_devices
    assert seen["jax_devices"] == ["cpu:0", "cpu:1"]
    # Ragged batches on both sides: 18 training images in 4s, 3 validation images.
    assert seen["sizes"] == [18, 3]
    assert seen["max_weight_diff"] < WEIGHT_TOLERANCE
    assert seen["max_prob_diff"] < WEIGHT_TOLERANCE
    one_acc, two_acc = seen["val_accuracy"]  # type: ignore[misc]
    assert one_acc == two_acc
    one_loss, two_loss = seen["loss"]  # type: ignore[misc]
    np.testing.assert_allclose(two_loss, one_loss, rtol=1e-5)
    # The validation loss is averaged over the padded rows (3 of 4): the same factor in
    # every epoch, so the best epoch is the same (ADR 010).
    one_val, two_val = seen["val_loss"]  # type: ignore[misc]
    np.testing.assert_allclose(two_val, np.array(one_val) * 3 / 4, rtol=1e-5)
    assert seen["status"] == [{"count": 1, "devices": ["cpu:0"]},
                              {"count": 2, "devices": ["cpu:0", "cpu:1"]}]
    # The model is back on one device after the run.
    assert seen["shardings_after"] == ["SingleDeviceSharding"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # 26 s: run by `bash scripts/test.sh -m slow`, not by every run (README)
def test_two_processes_train_as_two_devices_of_one(
        two_devices: dict[str, object], tmp_path: Path) -> None:
    """Two processes joined by keras.distribution.initialize, one CPU device each: the
    multi-host path (--multi-host) on one machine."""
    port = _free_port()
    procs = []
    for i in range(2):
        env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
                   CUDA_VISIBLE_DEVICES="-1", XLA_FLAGS="",
                   KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                   KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID=str(i),
                   TLGUI_DATA_DIR=str(tmp_path / f"data{i}"),
                   TLGUI_CACHE_DIR=str(tmp_path / f"cache{i}"))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.core.multihost_run", str(tmp_path / f"p{i}")],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    seen = []
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-4000:]
        seen.append(json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1]))
    assert [s["process"] for s in seen] == [0, 1]
    assert all(s["processes"] == 2 and len(s["devices"]) == 2 for s in seen)
    # Both processes hold the same model, the one two devices of one process train.
    assert seen[0]["checksum"] == pytest.approx(seen[1]["checksum"], rel=1e-7)
    assert seen[0]["checksum"] == pytest.approx(two_devices["checksum_two"], rel=1e-6)
    one_acc, _ = two_devices["val_accuracy"]  # type: ignore[misc]
    assert seen[0]["val_accuracy"] == seen[1]["val_accuracy"] == one_acc
    # Only the first process writes a run folder.
    assert [s["wrote_run"] for s in seen] == [True, False]


@pytest.mark.slow  # shares the two-device run above
def test_a_model_built_inside_the_run_trains_on_two_devices(
        two_devices: dict[str, object]) -> None:
    assert two_devices["inside_epochs"] == 3
    assert two_devices["inside_status"] == {"count": 2, "devices": ["cpu:0", "cpu:1"]}
    assert two_devices["inside_shardings_after"] == ["SingleDeviceSharding"]


def test_devices_that_cannot_work_are_refused_before_any_work(
        two_devices: dict[str, object]) -> None:
    assert two_devices["refused_3_4"] == (
        "--devices 3: only 2 CPU device(s) are available to the jax backend "
        "(cpu:0, cpu:1). Use --devices 2 or --devices all.")
    assert two_devices["refused_2_5"] == (
        "--batch-size 5 cannot be shared equally by 2 devices: use a multiple of 2 (4 or 6).")
    assert two_devices["refused_all_5"] == two_devices["refused_2_5"]
    assert two_devices["refused_left_runs"] is False


@pytest.mark.parametrize(("text", "count"), [("1", 1), ("4", 4), (" ALL ", None), (2, 2)])
def test_devices_setting_parses(text: str | int, count: int | None) -> None:
    assert parse_devices(text) == count


@pytest.mark.parametrize("text", ["0", "-1", "two", "", "1.5", True])
def test_bad_devices_setting_is_refused(text: str | bool) -> None:
    with pytest.raises(ConfigError, match="--devices"):
        check_train_config(TrainConfig(devices=text))  # type: ignore[arg-type]


def test_cli_devices_option() -> None:
    parser = build_parser()
    args = parser.parse_args(["train", "data", "--devices", "all"])
    assert train_config(args).devices == "all"
    assert train_config(parser.parse_args(["train", "data"])).devices == "1"
    with pytest.raises(ConfigError, match="--devices must be at least 1"):
        train_config(parser.parse_args(["train", "data", "--devices", "0"]))


def test_plan_takes_the_first_devices_of_the_chosen_kind() -> None:
    gpus = ["gpu:0", "gpu:1", "gpu:2"]
    assert plan_devices("2", "auto", GPU, 32, "jax", gpus).devices == ("gpu:0", "gpu:1")
    assert plan_devices("all", "gpu", GPU, 33 * 3, "jax", gpus).count == 3
    assert plan_devices("1", "gpu:1", GPU, 33, "jax", gpus).devices == ("gpu:0",)
    # One device found: "all" is a plain run, whatever the batch size.
    assert plan_devices("all", "cpu", CPU, 5, "jax", ["cpu:0"]).devices == ("cpu:0",)


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_other_backends_are_refused_with_the_backend_to_use(backend: str) -> None:
    with pytest.raises(ConfigError, match=r"needs the JAX backend.*KERAS_BACKEND=jax"):
        plan_devices("2", "auto", GPU, 32, backend, ["gpu:0", "gpu:1"])
    # "all" with a single GPU stays possible: it is one device.
    assert plan_devices("all", "auto", GPU, 32, backend, ["gpu:0"]).count == 1


def test_one_named_device_with_several_is_refused() -> None:
    with pytest.raises(ConfigError, match="CUDA_VISIBLE_DEVICES"):
        plan_devices("2", "gpu:1", GPU, 32, "jax", ["gpu:0", "gpu:1"])


def test_sharded_batches_pad_with_zero_weight_and_keep_the_mean() -> None:
    class Inner:
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return np.arange(3.0)[:, None], np.eye(3, dtype=np.float32)

        def on_epoch_end(self) -> None:
            pass

    x, y, w = ShardedBatches(Inner(), 2, training=True)[0]
    assert x.shape == (4, 1) and y.shape == (4, 3)
    np.testing.assert_allclose(w, [4 / 3, 4 / 3, 4 / 3, 0])
    # The mean over the padded batch of the weighted losses is the real rows' mean.
    losses = np.array([1.0, 2.0, 6.0, 100.0])
    assert np.sum(losses * w) / 4 == pytest.approx(3.0)
    _, _, w_val = ShardedBatches(Inner(), 2, training=False)[0]
    np.testing.assert_array_equal(w_val, [1, 1, 1, 0])


def test_all_under_tensorflow_on_this_cpu_is_one_device() -> None:
    cpu = DeviceInfo("cpu", "CPU", "cpu", "tensorflow", None, None, "cpu:0")
    plan = plan_devices("all", "auto", cpu, 30, "tensorflow")
    assert plan.devices == ("cpu:0",) and plan.to_dict() == {"count": 1, "devices": ["cpu:0"]}


def test_multi_host_needs_jax() -> None:
    from tlgui.core.distribution import join_hosts

    with pytest.raises(ConfigError, match=r"--multi-host needs the JAX backend"):
        join_hosts()  # this process runs TensorFlow
