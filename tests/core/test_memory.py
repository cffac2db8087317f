"""Memory housekeeping: the malloc arena cap and the trim between stages."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from tlgui.core.memory import release_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_importing_tlgui_caps_malloc_arenas() -> None:
    code = ("import tlgui; from tlgui.core.memory import limit_malloc_arenas; "
            "print(limit_malloc_arenas())")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "True"
    # A user's own setting wins: tlgui leaves it alone.
    env["MALLOC_ARENA_MAX"] = "4"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_release_memory_gives_freed_pages_back() -> None:
    proc = psutil.Process()
    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # ~190 MB of small heap blocks
    # Every tenth block stays: the freed ones lie between them, where free() alone cannot
    # hand pages back, as with tensors freed between the stages of a run.
    pins = blocks[::10]
    del blocks
    freed = proc.memory_info().rss
    release_memory()
    assert proc.memory_info().rss < freed - 100 * 2**20
    del pins
