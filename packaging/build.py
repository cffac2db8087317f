"""Build driver the platform scripts share: weights check, PyInstaller run, size report.

    python packaging/build.py bundle [--weights DIR]   # dist/tlgui (and dist/tlgui.app)
    python packaging/build.py version                  # the version, for file names
    python packaging/build.py size PATH...             # unpacked/file sizes in MB
    python packaging/build.py fetch-weights DIR        # CI only: download MobileNetV2 files

Exit codes: 0 success, 1 failure (one line on stderr saying what to do), 2 usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle_layout as layout

MB = 1_000_000
KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)


def tree_bytes(path: Path) -> int:
    """Bytes in a file or folder, each hard-linked file counted once, links not followed."""
    if path.is_file():
        return path.stat().st_size
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def dedupe_weights(folder: Path) -> int:
    """Hard-links byte-identical weight files in the bundle (POSIX); returns bytes saved.

    Archives store a hard link once, so identical files cost nothing in the download.
    """
    if os.name != "posix" or not folder.is_dir():
        return 0
    by_hash: dict[str, Path] = {}
    saved = 0
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.is_symlink():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        first = by_hash.setdefault(digest, path)
        if first != path and not path.samefile(first):
            saved += path.stat().st_size
            tmp = path.with_name(path.name + ".link")
            os.link(first, tmp)
            os.replace(tmp, path)
    return saved


def strip_libraries(internal: Path) -> int:
    """Strips the symbol tables of TensorFlow's libraries (Linux); returns bytes saved.

    Only files matching ``layout.STRIP_GLOBS``: PyInstaller's blanket ``strip`` also
    rewrites the auditwheel-patched libraries in ``<package>.libs/``, which then fail
    to load ("ELF load command address/offset not page-aligned").
    """
    if not sys.platform.startswith("linux") or not shutil.which("strip"):
        return 0
    files = sorted({p for g in layout.STRIP_GLOBS for p in internal.glob(g)
                    if p.is_file() and not p.is_symlink()})
    before = sum(p.stat().st_size for p in files)
    for path in files:
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
    return before - sum(p.stat().st_size for p in files)


def bundle_dir(dist: Path) -> Path:
    """The one-folder bundle inside ``dist`` (inside the .app on macOS)."""
    if sys.platform == "darwin":
        return dist / f"{layout.APP_NAME}.app"
    return dist / layout.APP_NAME


def weights_in_bundle(dist: Path) -> Path:
    """Where the weight files land in the bundle."""
    if sys.platform == "darwin":
        return dist / f"{layout.APP_NAME}.app" / "Contents" / "Resources" / layout.WEIGHTS_DEST
    return dist / layout.APP_NAME / "_internal" / layout.WEIGHTS_DEST


def cmd_bundle(args: argparse.Namespace) -> int:
    weights = layout.resolve_weights_dir(args.weights or None)
    files = layout.weight_files(weights)
    print(f"bundling {len(files)} weight file(s) from {weights}:")
    for f in files:
        print(f"  {f.name}  {f.stat().st_size / MB:.1f} MB")
    dist, work = Path(args.dist).resolve(), Path(args.work).resolve()
    edition = layout.edition_info(args.edition)
    print(f"edition: {edition['edition']} ({edition['backend']} backend)")
    env = dict(os.environ, **{layout.WEIGHTS_ENV: str(weights),
                              layout.EDITION_ENV: edition["edition"]})
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", args.log_level,
           "--distpath", str(dist), "--workpath", str(work), str(layout.PACKAGING / "tlgui.spec")]
    if args.clean:
        cmd.insert(3, "--clean")
    print("running:", " ".join(cmd), flush=True)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env=env, cwd=layout.REPO)
    seconds = time.monotonic() - t0
    shipped = weights_in_bundle(dist)
    missing = [f.name for f in files if not (shipped / f.name).is_file()]
    if missing:
        raise layout.BuildError(f"weights missing from the bundle at {shipped}: {missing}")
    if sys.platform.startswith("linux"):
        stripped = strip_libraries(dist / layout.APP_NAME / "_internal")
        print(f"stripped TensorFlow's libraries: {stripped / MB:.0f} MB saved")
    (shipped.parent / layout.EDITION_FILE).write_text(json.dumps(edition), encoding="utf-8")
    saved = dedupe_weights(shipped)
    if saved:
        print(f"hard-linked identical weight files: {saved / MB:.1f} MB saved")
    print(f"PyInstaller took {seconds / 60:.1f} min")
    print(f"bundle: {bundle_dir(dist)}  {tree_bytes(bundle_dir(dist)) / MB:.0f} MB unpacked")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(layout.version())
    return 0


def cmd_size(args: argparse.Namespace) -> int:
    for p in args.paths:
        print(f"{p}: {tree_bytes(Path(p)) / MB:.0f} MB")
    return 0


def cmd_fetch_weights(args: argparse.Namespace) -> int:
    """Downloads the MobileNetV2 no-top files Keras uses (for CI runners, which are online)."""
    import urllib.request

    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    for size in MOBILENET_V2_SIZES:
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
        if (dest / name).is_file():
            continue
        tmp = dest / (name + ".part")
        with urllib.request.urlopen(KERAS_URL + name, timeout=60) as r, open(tmp, "wb") as f:
            f.write(r.read())
        os.replace(tmp, dest / name)
        print(f"downloaded {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="run PyInstaller with the weights inside")
    b.add_argument("--weights", default="", help="folder of weight files (default: "
                   "$TLGUI_WEIGHTS_DIR, else ../shared/weights/models beside the repo)")
    b.add_argument("--dist", default=str(layout.REPO / "dist"))
    b.add_argument("--work", default=str(layout.REPO / "build" / "pyinstaller"))
    b.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    b.add_argument("--log-level", default="WARN")
    b.add_argument("--edition", default="cpu", choices=sorted(layout.EDITIONS),
                   help="cpu (default) or gpu: NVIDIA's CUDA libraries inside (Linux)")
    b.set_defaults(func=cmd_bundle)
    sub.add_parser("version").set_defaults(func=cmd_version)
    s = sub.add_parser("size")
    s.add_argument("paths", nargs="+")
    s.set_defaults(func=cmd_size)
    f = sub.add_parser("fetch-weights")
    f.add_argument("dest")
    f.set_defaults(func=cmd_fetch_weights)
    args = p.parse_args(argv)
    try:
        return int(args.func(args))
    except layout.BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: PyInstaller failed with exit code {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
