"""What the flower_photos benchmarks share: their arguments and a fresh work folder."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def setup(description: str, prefix: str,
          flags: dict[str, str] | None = None) -> tuple[argparse.Namespace, Path]:
    """Parses ``[DATA] [--weights-dir W]`` and on/off ``flags`` (name: help); points
    tlgui's cache and data folders at a fresh temporary folder, and makes the repository
    importable.

    Returns:
        (the arguments, the work folder).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data" /
                                                   "flower_photos"))
    p.add_argument("--weights-dir", default=str(REPO.parent / "shared" / "weights"))
    for flag, text in (flags or {}).items():
        p.add_argument(flag, action="store_true", help=text)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["TLGUI_CACHE_DIR"] = str(work / "cache")
    os.environ["TLGUI_DATA_DIR"] = str(work / "data")
    sys.path.insert(0, str(REPO))
    return args, work
