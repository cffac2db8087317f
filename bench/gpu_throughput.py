"""GPU throughput: tlgui under each Keras backend against the reference recipe, same device.

One command, on the machine with the GPU::

    .venv/bin/python bench/gpu_throughput.py                       # flower_photos, all backends
    .venv/bin/python bench/gpu_throughput.py --backends tensorflow,jax --device gpu:0
    .venv/bin/python bench/gpu_throughput.py --quick --device cpu  # checks the script (CPU)

Each run is a process of its own, one after the other:

1. the reference recipe (``bench/reference_recipe.py``: the Keras tutorial, tf.data at
   160 px, batch 32, 10 + 10 epochs) under TensorFlow; it uses the GPU when TensorFlow
   sees one (Linux; never on native Windows, where TensorFlow has no GPU support);
2. tlgui's defaults on the reference's own split, once per backend in ``--backends``
   (``KERAS_BACKEND``), with ``--device`` and ``--precision`` (default ``auto``: the
   first GPU and float16 mixed precision on tensor-core GPUs). The decode cache is filled
   by the first tlgui run and reused by the others, as on a second run in the app.

It prints a Markdown table per run: the device, images per second of phase 1 and phase 2
(training images x epochs / phase wall time; phase 1 includes the frozen-feature pass,
phase 2 the pass for the mirrored view) and of their epochs alone, the time to the
reference's final validation accuracy, and each as a ratio to the reference, with the
issue's goals (phase 2 at least 10x the reference's images/s, the reference's accuracy in
at most a tenth of its time) marked met or not. Raw JSON and logs go to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import time_to_accuracy as tta  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
GOAL_SPEEDUP, GOAL_TIME_SHARE = 10.0, 0.1


def run_child(args: argparse.Namespace) -> None:
    """tlgui's defaults under this process's backend; writes the result JSON."""
    import keras

    from tlgui.core.config import TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.events import EpochEnded, Event
    from tlgui.core.training import run_training

    t0 = time.monotonic()
    elapsed: dict[int, float] = {}

    def report(event: Event) -> None:
        if isinstance(event, EpochEnded):
            elapsed[event.epoch] = time.monotonic() - t0
            print(f"[{tta._stamp()}] phase {event.phase} epoch {event.epoch:2d} val_acc "
                  f"{event.val_accuracy:.4f} ({event.seconds:.1f} s)", flush=True)

    dataset = scan(args.data)
    config = TrainConfig(weights_dir=args.weights_dir, device=args.device,
                         precision=args.precision)
    if args.epochs is not None:
        config = config.replace(phase1=config.phase1.__class__(epochs=args.epochs),
                                phase2=config.phase2.__class__(epochs=args.epochs,
                                                               learning_rate=1e-4))
    if args.batch_size:
        config = config.replace(batch_size=args.batch_size)
    result = run_training(dataset, config, report=report)
    status = result.run.read_status() if result.run else {}
    history = [dict(row, elapsed=elapsed.get(row["epoch"], math.nan)) for row in result.history]
    acc = {str(k): v for k, v in result.phase_accuracy.items()}
    Path(args.result).write_text(json.dumps({
        "recipe": f"tlgui ({keras.backend.backend()})", "backend": keras.backend.backend(),
        "device": status.get("device"), "precision": status.get("precision"),
        "train_images": len(result.dataset.train),
        "phase_seconds": {str(k): v for k, v in result.phase_seconds.items()},
        "total_seconds": time.monotonic() - t0, "phase_accuracy": acc,
        "final_val_accuracy": acc.get("2", acc.get("1", math.nan)), "history": history,
    }, indent=1))


def tensorflow_device(setting: str) -> dict[str, Any]:
    """The device TensorFlow (the reference's framework) picks for ``setting``."""
    code = ("import json, sys; from tlgui.core.devices import select_device, list_devices; "
            "d = select_device(sys.argv[1], list_devices('tensorflow')); "
            "print(json.dumps({'id': d.id, 'name': d.name}))")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code, setting], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"id": "?", "name": proc.stderr[-200:]}


def images_per_second(r: dict[str, Any], phase: int, epochs_only: bool) -> float | None:
    """Training images x epochs of a phase / its wall time (or its epochs' own time)."""
    rows = [h for h in r.get("history", []) if h["phase"] == phase]
    n = r.get("train_images") or len(r.get("train_files", []))
    seconds = sum(h["seconds"] for h in rows) if epochs_only \
        else r.get("phase_seconds", {}).get(str(phase))
    if not rows or not n or not seconds:
        return None
    return float(n * len(rows) / seconds)


def table(ref: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per run, the reference first, with ratios to it."""
    target = ref["final_val_accuracy"]
    t_ref = tta.time_to_reach(ref, target)
    head = ("| run | device | precision | phase 1 img/s | phase 2 img/s | phase 2 epochs "
            "img/s | phase 2 vs ref | final val acc | time to ref acc | vs ref |")
    lines = [head, "|" + "---|" * 10]

    def fmt(v: float | None, digits: int = 0) -> str:
        return "-" if v is None or math.isnan(v) else f"{v:.{digits}f}"

    ref_p2 = images_per_second(ref, 2, False)
    for name, r in [("reference recipe", ref), *runs.items()]:
        dev = r.get("device") or {}
        device = f"{dev.get('id', '?')} {dev.get('name', '')}".strip()
        p2 = images_per_second(r, 2, False)
        reach = tta.time_to_reach(r, target)
        speed = None if p2 is None or not ref_p2 else p2 / ref_p2
        share = None if reach is None or not t_ref else reach / t_ref
        speed_met = speed is not None and speed >= GOAL_SPEEDUP
        share_met = share is not None and share <= GOAL_TIME_SHARE
        marks = ("", "") if r is ref else (
            f" (goal {'met' if speed_met else 'not met'})",
            f" (goal {'met' if share_met else 'not met'})")
        lines.append("| " + " | ".join([
            name, device, str(r.get("precision", "float32")),
            fmt(images_per_second(r, 1, False)), fmt(p2),
            fmt(images_per_second(r, 2, True)),
            "1" if r is ref else fmt(speed, 2) + "x" + marks[0],
            fmt(100 * r["final_val_accuracy"], 1) + " %",
            "not reached" if reach is None else f"{reach:.1f} s",
            "1" if r is ref else (fmt(share, 3) + marks[1])]) + " |")
    return "\n".join(lines)


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", nargs="?", type=Path, default=REPO.parent / "shared/data/flower_photos")
    p.add_argument("--weights-dir", default=str(REPO.parent / "shared/weights"))
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help="comma-separated Keras backends to run tlgui under")
    p.add_argument("--device", default="auto", help="auto, cpu or a device id (gpu:0)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--batch-size", type=int, default=None, help="tlgui's training batch")
    p.add_argument("--epochs", type=int, default=None, help="epochs per phase, every run")
    p.add_argument("--quick", action="store_true", help="2 classes x 60 images, 2+2 epochs")
    p.add_argument("--reference-json", help="reuse reference.json of an earlier run")
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick and args.epochs is None:
        args.epochs = tta.QUICK_EPOCHS
    return args


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    args = _parse(argv)
    if args.child:
        run_child(args)
        return
    out = args.out_dir or Path(tempfile.mkdtemp(prefix="tlgui-gpu-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    data = args.data.resolve()
    if args.quick:
        data = tta.quick_subset(data, out)
    from tlgui.core.devices import configure_process

    # The reference runs on the same device: its TensorFlow reads these variables too.
    configure_process(args.device, "tensorflow")
    if args.reference_json:
        ref = json.loads(Path(args.reference_json).read_text())
    else:
        ref_args = argparse.Namespace(weights_dir=args.weights_dir, epochs=args.epochs)
        ref = tta.run_reference(data, ref_args, out)
        ref["device"] = tensorflow_device(args.device)
    split = tta.same_split(data, ref, out)
    runs: dict[str, dict[str, Any]] = {}
    cache = out / "cache"
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        result_path = out / f"tlgui-{backend}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), str(split), "--child",
               "--result", str(result_path), "--weights-dir", args.weights_dir,
               "--device", args.device, "--precision", args.precision]
        if args.epochs is not None:
            cmd += ["--epochs", str(args.epochs)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        env = tta._child_env(cache, out / backend)
        env["KERAS_BACKEND"] = backend
        # Before the backend loads, as the app does.
        configure_process(args.device, backend, env)
        print(f"[{tta._stamp()}] tlgui under {backend}", flush=True)
        try:
            _, wall, rss = tta._run_measured(cmd, env, out / f"tlgui-{backend}.log")
        except SystemExit as exc:  # one backend failing (not installed) leaves the others
            print(f"    {backend}: {exc}", flush=True)
            continue
        runs[f"tlgui, {backend}"] = dict(json.loads(result_path.read_text()),
                                         wall_seconds=wall, peak_rss_mib=rss)
        (out / "table.md").write_text(table(ref, runs) + "\n")
    machine = f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}"
    report = "\n".join([f"## GPU throughput ({machine}; data {data})", "", table(ref, runs),
                        "", f"Raw results and logs: `{out}`"])
    (out / "report.md").write_text(report + "\n")
    print("\n" + report, flush=True)


if __name__ == "__main__":
    main()
