"""The command line: exit codes, messages without tracebacks, and a tiny end-to-end run."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.imagegen import make_dataset
from tlgui.cli import ConsoleReporter, main
from tlgui.core.events import BatchProgress, EpochEnded


def test_scan_lists_counts_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_dataset(tmp_path / "d", per_class=10)
    (root / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    assert main(["scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "red" in out and "total" in out and "broken.jpg" in out


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train"])
    assert exc.value.code == 2
    assert main([]) == 2


def test_failure_is_one_line_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tlgui", "scan", str(tmp_path / "nowhere")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: The folder")


def test_offline_missing_weights_fail_fast_with_the_file_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_dataset(tmp_path / "d", per_class=10)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.delenv("TLGUI_WEIGHTS_DIR", raising=False)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tlgui", "train", str(root), "--backbone", "ConvNeXtTiny"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert time.monotonic() - t0 < 60  # a start-up of TensorFlow included; no network hang
    assert "convnext_tiny_notop.h5" in proc.stderr and "Traceback" not in proc.stderr


def test_train_end_to_end_and_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_dataset(tmp_path / "d", per_class=8)
    out = tmp_path / "m.keras"
    code = main(["train", str(root), "--weights", "none", "--image-size", "32", "--epochs", "1",
                 "--fine-tune-epochs", "1", "--batch-size", "8", "--fine-tune-at", "140",
                 "--out", str(out)])
    assert code == 0 and out.is_file()
    text = capsys.readouterr().out
    assert "phase 1:" in text and "phase 2:" in text
    assert main(["runs"]) == 0
    assert "complete" in capsys.readouterr().out


def test_reporter_plain_lines_when_not_a_tty() -> None:
    buf = io.StringIO()
    rep = ConsoleReporter(buf)
    rep(BatchProgress(1, 1, 1, 10, 5.0, 0.5))
    rep(EpochEnded(1, 1, 0.5, 0.8, 0.6, 0.7, 1.0))
    text = buf.getvalue()
    assert "\r" not in text and "val_acc 0.7000" in text


def test_datasets_fetch_with_mock_data(tmp_path: Path) -> None:
    import tensorflow_datasets as tfds

    from tlgui.core.tfds_fetch import fetch_dataset

    with tfds.testing.mock_data(num_examples=15):
        dest = fetch_dataset("tf_flowers", tmp_path / "flowers")
    classes = sorted(p.name for p in dest.iterdir())
    assert classes == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert sum(len(list(p.iterdir())) for p in dest.iterdir()) == 15
    assert not list(tmp_path.glob(".tlgui-fetch-*"))


def test_datasets_fetch_offline_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import tlgui.core.tfds_fetch as fetch

    monkeypatch.setattr(fetch, "_can_reach", lambda host, timeout=3.0: False)
    t0 = time.monotonic()
    code = main(["datasets", "fetch", "tf_flowers", str(tmp_path / "x"),
                 "--data-dir", str(tmp_path / "empty")])
    assert code == 1 and time.monotonic() - t0 < 30
    assert "cannot be downloaded" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.fixture
def restored_device_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--device`` sets process variables (devices.configure_process): undo them after."""
    for var in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "TF_FORCE_GPU_ALLOW_GROWTH",
                "JAX_PLATFORMS", "KERAS_TORCH_DEVICE"):
        monkeypatch.delenv(var, raising=False)


def test_devices_lists_the_cpu_and_refuses_a_missing_gpu(
        restored_device_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("* cpu ")
    assert "Trains on CPU · Keras" in out and "tensorflow backend" in out
    assert main(["--device", "gpu:7", "devices"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: The device 'gpu:7' is not available")


def test_device_and_precision_options_reach_the_config() -> None:
    from tlgui.cli import build_parser
    from tlgui.cli_train import train_config as _train_config

    parser = build_parser()
    cfg = _train_config(parser.parse_args(["train", "d", "--device", "cpu",
                                           "--precision", "float32"]))
    assert (cfg.device, cfg.precision) == ("cpu", "float32")
    cfg = _train_config(parser.parse_args(["--device", "gpu:1", "train", "d"]))
    assert (cfg.device, cfg.precision) == ("gpu:1", "auto")


def test_the_fine_tuning_schedule_option_reaches_the_config() -> None:
    from tlgui.cli import build_parser
    from tlgui.cli_train import train_config as _train_config
    from tlgui.core.config import TrainConfig

    parser = build_parser()
    default = _train_config(parser.parse_args(["train", "d"]))
    assert default.phase2.schedule == TrainConfig().phase2.schedule
    assert default.phase1.schedule == "constant"
    for choice in ("constant", "cosine"):
        cfg = _train_config(parser.parse_args(["train", "d", "--fine-tune-schedule", choice]))
        assert cfg.phase2.schedule == choice
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "d", "--fine-tune-schedule", "linear"])
