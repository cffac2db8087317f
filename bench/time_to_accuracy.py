"""Time to accuracy: tlgui's default run against the published Keras recipe, same data.

One invocation runs, one after the other and each in its own process (so peak memory is
measured per run through ``os.wait4``):

1. the reference recipe (``bench/reference_recipe.py``);
2. tlgui's defaults with an empty decode cache (a fresh ``TLGUI_CACHE_DIR``): *cold*;
3. tlgui's defaults again on that cache: *warm*;
4. optionally (``--per-epoch``) tlgui with ``AugmentConfig(mode="per_epoch")``, which
   recomputes the backbone every epoch (slow), to compare the accuracy of cached
   augmented views with fresh random augmentation.

It prints a Markdown table per data set: wall time of each phase and in total, validation
accuracy after each phase, the time each run took to first reach the reference's final
validation accuracy, peak RSS, and the ratios tlgui / reference. Raw results are written
as JSON files to ``--out-dir`` (``reference.json`` can be passed back with
``--reference-json`` to skip re-running the reference). Run from the repository root::

    .venv/bin/python bench/time_to_accuracy.py                 # ../shared/data/flower_photos
    .venv/bin/python bench/time_to_accuracy.py --quick         # 2 classes x 60 images, 2+2 epochs
    .venv/bin/python bench/time_to_accuracy.py /data/my_set --reference-json ref.json

Times of tlgui start before the dataset scan and include decoding and frozen features;
times of the reference start after its imports and include building the datasets and the
model. "Process" times also include Python and TensorFlow start-up.
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
from datetime import datetime
from pathlib import Path
from typing import Any

T_PROCESS = time.monotonic()
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
QUICK_CLASSES, QUICK_IMAGES, QUICK_EPOCHS = 2, 60, 2
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


# --------------------------------------------------------------------------- child: tlgui


def run_tlgui_child(args: argparse.Namespace) -> None:
    """Runs tlgui's defaults in this process and writes the result JSON (``--child``)."""
    import dataclasses

    from tlgui.core.config import AugmentConfig, TrainConfig
    from tlgui.core.dataset import scan
    from tlgui.core.events import EpochEnded, Event, PhaseStarted
    from tlgui.core.pixel_cache import PixelCache
    from tlgui.core.training import run_training

    t0 = time.monotonic()
    marks: dict[str, float] = {}
    elapsed: dict[int, float] = {}

    def report(event: Event) -> None:
        now = time.monotonic() - t0
        if isinstance(event, PhaseStarted):
            marks[f"phase{event.phase}_started"] = now
            print(f"[{_stamp()}] phase {event.phase} started at {now:.1f} s", flush=True)
        elif isinstance(event, EpochEnded):
            elapsed[event.epoch] = now
            print(f"[{_stamp()}] phase {event.phase} epoch {event.epoch:2d}"
                  f"  loss {event.loss:.4f}  acc {event.accuracy:.4f}"
                  f"  val_loss {event.val_loss:.4f}  val_acc {event.val_accuracy:.4f}"
                  f"  ({event.seconds:.1f} s, {now:.1f} s since start)", flush=True)

    dataset = scan(args.data)
    scan_s = time.monotonic() - t0
    config = TrainConfig(weights_dir=args.weights_dir)
    if args.epochs is not None:
        config = config.replace(
            phase1=dataclasses.replace(config.phase1, epochs=args.epochs),
            phase2=dataclasses.replace(config.phase2, epochs=args.epochs))
    if args.augment_mode:
        config = config.replace(augment=AugmentConfig(mode=args.augment_mode))
    if args.config_json:
        config = TrainConfig.from_dict(_merged(config.to_dict(), json.loads(args.config_json)))
    cache = PixelCache()
    result = run_training(dataset, config, report=report, cache=cache)
    t_end = time.monotonic()
    test: dict[str, Any] = {}
    if result.dataset.test:
        from tlgui.core.evaluate import evaluate_model

        # Measured once, on the kept (best-epoch) model; outside the timed training.
        from tlgui.core.mirror_tta import mirror_average

        t_test = time.monotonic()
        ev = evaluate_model(result.model.model, result.model.image_size, result.dataset,
                            "test", cache=cache)
        t_tta = time.monotonic()
        mirrored = evaluate_model(mirror_average(result.model.model),
                                  result.model.image_size, result.dataset, "test", cache=cache)
        test = {"test_accuracy": ev.accuracy, "test_images": int(ev.confusion.sum()),
                "test_seconds": t_tta - t_test, "test_accuracy_mirror": mirrored.accuracy,
                "test_seconds_mirror": time.monotonic() - t_tta}
    history = [dict(row, elapsed=elapsed.get(row["epoch"], math.nan)) for row in result.history]
    acc = {str(k): v for k, v in result.phase_accuracy.items()}
    out = {
        "recipe": f"tlgui ({config.augment.mode})", "data": str(Path(args.data).resolve()),
        "classes": dataset.class_names, "train_images": len(result.dataset.train),
        "validation_images": len(result.dataset.validation),
        "config": config.to_dict(),
        "scan_seconds": scan_s, "decode_seconds": result.decode_seconds,
        "phase_seconds": {str(k): v for k, v in result.phase_seconds.items()},
        "marks": marks, "total_seconds": t_end - t0, "process_seconds": t_end - T_PROCESS,
        "phase_accuracy": acc,
        "final_val_accuracy": acc.get("2", acc.get("1", math.nan)),
        "cache": dataclasses.asdict(cache.stats), "history": history, **test,
        "cross_validation": result.cross_validation.to_dict()
        if getattr(result, "cross_validation", None) else None,
    }
    Path(args.result).write_text(json.dumps(out, indent=1))


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied, nested dicts (``phase2``...) merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------- parent: driver


def _run_measured(cmd: list[str], env: dict[str, str], log_path: Path) -> tuple[str, float,
                                                                                   float]:
    """Runs ``cmd``, tees its output to ``log_path``; returns (output, wall s, peak RSS MiB)."""
    t = time.monotonic()
    lines: list[str] = []
    with log_path.open("w") as log, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=REPO) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            log.write(line)
            log.flush()
            if line.startswith("[") or "Error" in line:
                print("    " + line.rstrip()[:200], flush=True)
        # wait4 rather than proc.wait(): it returns the child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[1]} failed (exit {proc.returncode}); see {log_path}")
    # Linux reports ru_maxrss in KiB.
    return "".join(lines), wall, usage.ru_maxrss / 1024


def _child_env(cache_dir: Path, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TLGUI_CACHE_DIR=str(cache_dir), TLGUI_DATA_DIR=str(data_dir / "data"),
               TLGUI_LOG_DIR=str(data_dir / "logs"), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONUNBUFFERED="1",
               # This checkout's tlgui, not the one the virtual environment was installed
               # from (an editable install points at another worktree).
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH"))
                                          if p))
    return env


def run_reference(data: Path, args: argparse.Namespace, out: Path,
                  extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Runs ``reference_recipe.py`` in a child process (``extra``: more of its options)."""
    cmd = [sys.executable, str(HERE / "reference_recipe.py"), str(data),
           "--weights-dir", args.weights_dir, *extra]
    if args.epochs is not None:
        cmd += ["--initial-epochs", str(args.epochs), "--fine-tune-epochs", str(args.epochs)]
    env = _child_env(out / "unused-cache", out)
    print(f"[{_stamp()}] reference recipe on {data}", flush=True)
    text, wall, rss = _run_measured(cmd, env, out / "reference.log")
    last = [ln for ln in text.splitlines() if ln.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    result.update(wall_seconds=wall, peak_rss_mib=rss)
    (out / "reference.json").write_text(json.dumps(result, indent=1))
    return result


def run_tlgui(data: Path, args: argparse.Namespace, out: Path, cache: Path, name: str,
              augment_mode: str | None = None,
              config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Runs tlgui in a child process (this script with ``--child``): its defaults, changed
    by ``config`` (a partial ``TrainConfig.to_dict()``, applied after ``args.epochs``)."""
    result_path = out / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), str(data), "--child",
           "--result", str(result_path), "--weights-dir", args.weights_dir]
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    if augment_mode:
        cmd += ["--augment-mode", augment_mode]
    if config:
        cmd += ["--config-json", json.dumps(config)]
    print(f"[{_stamp()}] {name} on {data} (cache {cache})", flush=True)
    _, wall, rss = _run_measured(cmd, _child_env(cache, out / name), out / f"{name}.log")
    result: dict[str, Any] = json.loads(result_path.read_text())
    result.update(wall_seconds=wall, peak_rss_mib=rss)
    result_path.write_text(json.dumps(result, indent=1))
    return result


def time_to_reach(result: dict[str, Any], target: float) -> float | None:
    """Elapsed seconds at the first epoch whose validation accuracy >= target."""
    for row in result["history"]:
        if row["val_accuracy"] >= target - 1e-9 and not math.isnan(row["elapsed"]):
            return float(row["elapsed"])
    return None


def _fmt(v: float | None, kind: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "not reached" if kind == "reach" else "-"
    if kind == "text":
        return str(v)
    if kind == "acc":
        return f"{100 * v:.1f} %"
    if kind == "mib":
        return f"{v:.0f} MiB"
    return f"{v:.1f} s"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "-"
    return f"{a / b:.2f}"


def table(ref: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    """The Markdown comparison table (rows: measures; columns: runs and ratios)."""
    target = ref["final_val_accuracy"]

    def decode(r: dict[str, Any]) -> float | None:
        if "decode_seconds" not in r:
            return None
        return float(r["scan_seconds"] + r["decode_seconds"])

    def images(r: dict[str, Any]) -> str | None:
        if "validation_files" in r:
            return f"{len(r['train_files'])} / {len(r['validation_files'])}"
        if "validation_images" in r:
            return f"{r['train_images']} / {r['validation_images']}"
        return None

    rows: list[tuple[str, str, Any]] = [
        ("Training / validation images", "text", images),
        ("Scan + decode (tlgui; the reference decodes inside every epoch)", "s", decode),
        ("Phase 1 wall time (tlgui: incl. frozen features)", "s",
         lambda r: r["phase_seconds"].get("1")),
        ("Phase 2 wall time", "s", lambda r: r["phase_seconds"].get("2")),
        ("Total (after imports: data, model, both phases)", "s", lambda r: r["total_seconds"]),
        ("Process wall time (incl. Python/TF start-up)", "s", lambda r: r["wall_seconds"]),
        ("Validation accuracy after phase 1", "acc", lambda r: r["phase_accuracy"].get("1")),
        ("Final validation accuracy", "acc", lambda r: r["final_val_accuracy"]),
        (f"Time to reach {_fmt(target, 'acc')} (reference final)", "reach",
         lambda r: time_to_reach(r, target)),
        ("Peak RSS", "mib", lambda r: r["peak_rss_mib"]),
    ]
    names = list(runs)
    head = ["Measure", "reference", *names, *[f"{n} / ref" for n in names]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, kind, get in rows:
        ref_v = get(ref)
        vals = [get(runs[n]) for n in names]
        cells = [_fmt(ref_v, kind), *[_fmt(v, kind) for v in vals]]
        if kind == "text":
            cells += ["-" for _ in vals]
        elif kind == "acc":
            cells += [("-" if v is None or ref_v is None or math.isnan(v - ref_v)
                       else f"{100 * (v - ref_v):+.1f} pt") for v in vals]
        else:
            cells += [_ratio(v, ref_v) for v in vals]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def same_split(data: Path, ref: dict[str, Any], root: Path) -> Path:
    """Links the reference's own training/validation split into ``root/train|validation``.

    tlgui then trains and validates on exactly the images the reference did, so the
    accuracies compare the recipes, not two random 20% draws (each +-1.1 points at 90%).
    """
    split = root / f"split-{data.name}"
    for side, key in (("train", "train_files"), ("validation", "validation_files")):
        for f in map(Path, ref[key]):
            link = split / side / f.parent.name / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(f.resolve())
    return split


def quick_subset(data: Path, root: Path) -> Path:
    """Links the first few images of the first classes into ``root`` (never writes data)."""
    sub = root / f"quick-{data.name}"
    classes = sorted(p for p in data.iterdir() if p.is_dir())[:QUICK_CLASSES]
    for cls in classes:
        (sub / cls.name).mkdir(parents=True, exist_ok=True)
        files = sorted(f for f in cls.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for f in files[:QUICK_IMAGES]:
            link = sub / cls.name / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    return sub


def bench_one(data: Path, args: argparse.Namespace, out: Path) -> str:
    """Runs every configuration on one data set; returns its Markdown section."""
    out.mkdir(parents=True, exist_ok=True)
    if args.reference_json:
        ref = json.loads(Path(args.reference_json).read_text())
    elif args.skip_reference:
        ref = None
    else:
        ref = run_reference(data, args, out)
    if ref is None:
        ref = {"final_val_accuracy": math.nan, "phase_seconds": {}, "phase_accuracy": {},
               "total_seconds": math.nan, "wall_seconds": math.nan,
               "peak_rss_mib": math.nan, "history": []}
    tl_data = data
    if not args.own_split and "validation_files" in ref:
        tl_data = same_split(data, ref, out)
        print(f"[{_stamp()}] tlgui uses the reference's split: {tl_data}", flush=True)
    cache = out / "cache"  # fresh per invocation: the cold run starts empty
    plan: list[tuple[str, str, str | None]] = [("tlgui cold", "tlgui-cold", None)]
    if not args.no_warm:
        plan.append(("tlgui warm", "tlgui-warm", None))
    if args.per_epoch:
        plan.append(("tlgui per_epoch", "tlgui-per-epoch", "per_epoch"))
    runs: dict[str, dict[str, Any]] = {}
    for label, name, mode in plan:
        runs[label] = run_tlgui(tl_data, args, out, cache, name, mode)
        # Written after every run, so a long run cut short still leaves a table.
        section = "\n".join([f"### {data}", "", table(ref, runs), "",
                             f"Raw results and logs: `{out}`"])
        (out / "table.md").write_text(section + "\n")
    return section


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", nargs="*", type=Path,
                   default=[REPO.parent / "shared/data/flower_photos"],
                   help="folders of class folders (default ../shared/data/flower_photos)")
    p.add_argument("--weights-dir", default=str(REPO.parent / "shared/weights"),
                   help="folder of ImageNet weight files (default ../shared/weights)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_CLASSES} classes x {QUICK_IMAGES} images, "
                        f"{QUICK_EPOCHS} epochs per phase: checks the script works")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per phase for every run (default: each recipe's own)")
    p.add_argument("--skip-reference", action="store_true", help="run tlgui only")
    p.add_argument("--reference-json", help="reuse reference.json of an earlier run")
    p.add_argument("--no-warm", action="store_true", help="skip the warm-cache tlgui run")
    p.add_argument("--own-split", action="store_true",
                   help="let tlgui draw its own 20%% split instead of the reference's")
    p.add_argument("--per-epoch", action="store_true",
                   help="also run tlgui with per-epoch random augmentation (slow)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where JSON results and logs go (default: a new temp folder)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--augment-mode", help=argparse.SUPPRESS)
    p.add_argument("--config-json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick and args.epochs is None:
        args.epochs = QUICK_EPOCHS
    return args


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    args = _parse(argv)
    if args.child:
        run_tlgui_child(argparse.Namespace(**{**vars(args), "data": args.data[0]}))
        return
    out = args.out_dir or Path(tempfile.mkdtemp(prefix="tlgui-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for i, data in enumerate(args.data):
        data = data.resolve()
        if args.quick:
            data = quick_subset(data, out)
        sections.append(bench_one(data, args, out / f"{i}-{data.name}"))
    machine = f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}"
    report = "\n\n".join([f"## Time to accuracy ({machine})", *sections])
    (out / "report.md").write_text(report + "\n")
    print("\n" + report, flush=True)


if __name__ == "__main__":
    main()
