"""Loads the packaging scripts (plain files, not a package) as modules for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def load(name: str) -> ModuleType:
    """Imports ``packaging/<name>.py``."""
    if str(PACKAGING) not in sys.path:
        sys.path.insert(0, str(PACKAGING))  # build.py imports bundle_layout by name
    spec = importlib.util.spec_from_file_location(f"tlgui_packaging_{name}",
                                                  PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def layout() -> ModuleType:
    """``packaging/bundle_layout.py``."""
    return load("bundle_layout")


@pytest.fixture(scope="session")
def build() -> ModuleType:
    """``packaging/build.py``."""
    return load("build")
