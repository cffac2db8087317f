"""Data-parallel training against one device, side by side, under JAX (ADR 010).

    python bench/data_parallel.py [DATA] [--weights-dir W] [--per-class 40]
        [--devices 2] [--virtual]

Trains MobileNetV2 (ImageNet weights, 96 px, 2 + 2 epochs) on ``--per-class`` images of
each class of DATA (default: flower_photos), once on one device and once on
``--devices``, each in a process of its own with ``KERAS_BACKEND=jax``. ``--virtual``
splits the CPU into that many virtual devices (``XLA_FLAGS``), which share the same
cores: it checks the result, not the speed. On a machine with several GPUs, leave it
out. Prints seconds per phase and per epoch, the ratio, and the best validation accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(data: Path, weights_dir: str, devices: str, device: str) -> dict[str, object]:
    sys.path.insert(0, str(REPO))
    from tlgui.core.config import PhaseConfig, TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.training import run_training

    config = TrainConfig(image_size=96, weights_dir=weights_dir, batch_size=32, device=device,
                         devices=devices, phase1=PhaseConfig(epochs=2),
                         phase2=PhaseConfig(epochs=2, learning_rate=1e-4,
                                            early_stopping_patience=None))
    result = run_training(scan(data, config.split), config)
    return {"phase_seconds": result.phase_seconds,
            "epoch_seconds": [round(h["seconds"], 2) for h in result.history],
            "val_accuracy": [round(h["val_accuracy"], 4) for h in result.history]}


def subset(data: Path, per_class: int, into: Path) -> Path:
    """Links the first ``per_class`` images of each class folder into ``into``."""
    for cls in sorted(p for p in data.iterdir() if p.is_dir()):
        (into / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:per_class]:
            (into / cls.name / f.name).symlink_to(f)
    return into


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?",
                   default=str(REPO.parent / "shared" / "data" / "flower_photos"))
    p.add_argument("--weights-dir", default=str(REPO.parent / "shared" / "weights"))
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--devices", default="2")
    p.add_argument("--virtual", action="store_true")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        out = child(Path(args.data), args.weights_dir, args.child[0], args.child[1])
        print(json.dumps(out))
        return
    work = Path(tempfile.mkdtemp(prefix="tlgui-dp-"))
    data = subset(Path(args.data), args.per_class, work / "data")
    env = dict(os.environ, KERAS_BACKEND="jax", TLGUI_CACHE_DIR=str(work / "cache"),
               TLGUI_DATA_DIR=str(work / "tlgui"))
    device = "auto"
    if args.virtual:
        env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices}",
                   JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="-1")
        device = "cpu"
    results = {}
    for devices in ("1", args.devices):
        proc = subprocess.run([sys.executable, __file__, str(data), "--weights-dir",
                               args.weights_dir, "--child", devices, device],
                              env=env, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        results[devices] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"devices={devices}: {results[devices]}")
    one, many = results["1"], results[args.devices]
    for phase in ("1", "2"):
        ratio = many["phase_seconds"][phase] / one["phase_seconds"][phase]
        print(f"phase {phase}: {one['phase_seconds'][phase]:.1f} s on 1 device, "
              f"{many['phase_seconds'][phase]:.1f} s on {args.devices} "
              f"(ratio {ratio:.2f})")


if __name__ == "__main__":
    main()
