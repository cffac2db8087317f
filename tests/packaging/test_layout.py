"""The installer inputs: every path the spec and scripts name exists, weights rules, pruning."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from tests.packaging.conftest import PACKAGING, load
from tlgui.core import backbones

REPO = PACKAGING.parent
# Derived from the registry: the installer must carry the file the app's default loads.
_SPEC = backbones.get(backbones.DEFAULT_BACKBONE)
DEFAULT_WEIGHTS = _SPEC.weights_file(_SPEC.default_size)


def test_layout_paths_exist(layout: ModuleType) -> None:
    for path in (layout.ENTRY, layout.ICON_ICO, layout.ICON_ICNS, layout.ICON_PNG,
                 layout.ICON_SVG, PACKAGING / "tlgui.spec", layout.REPO / "pyproject.toml"):
        assert path.is_file(), path
    assert layout.REPO == REPO
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", layout.version())


def test_spec_is_valid_python_naming_the_layout(layout: ModuleType) -> None:
    text = (PACKAGING / "tlgui.spec").read_text(encoding="utf-8")
    ast.parse(text)
    for name in ("layout.ENTRY", "layout.app_datas", "layout.EXCLUDES", "layout.keep_module",
                 "layout.keep_file", "layout.ICON_ICO", "layout.ICON_ICNS", "BUNDLE(",
                 "contents_directory", "layout.WEIGHTS_ENV"):
        assert name in text, name


def test_inno_setup_script_sources_exist() -> None:
    iss = PACKAGING / "windows" / "tlgui.iss"
    text = iss.read_text(encoding="utf-8")
    for section in ("[Setup]", "[Files]", "[Icons]", "[UninstallDelete]", "[Run]"):
        assert section in text, section
    # Every literal source path is relative to the .iss folder (Inno's default SourceDir).
    literal = re.findall(r'^(?:Source: "|SetupIconFile=)([^"{\n]+)', text, re.MULTILINE)
    assert len(literal) >= 2
    for rel in literal:
        assert (iss.parent / rel.replace("\\", "/")).exists(), rel
    bundle = re.search(r'#define BundleDir "([^"]+)"', text)
    assert bundle and (iss.parent / bundle.group(1).replace("\\", "/")).resolve() == \
        REPO / "dist" / "tlgui"
    assert re.search(r"^OutputDir=\.\.\\\.\.\\dist$", text, re.MULTILINE)


def test_desktop_entry_has_required_keys() -> None:
    text = (PACKAGING / "linux" / "tlgui.desktop").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "[Desktop Entry]"
    keys = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert keys["Type"] == "Application"
    assert keys["Exec"] == "tlgui" and keys["Icon"] == "tlgui"
    assert keys["Categories"].endswith(";")


@pytest.mark.parametrize("script", ["build_linux.sh", "build_macos.sh", "smoke_test.sh",
                                    "linux/install.sh"])
def test_shell_scripts_parse_and_are_executable(script: str) -> None:
    path = PACKAGING / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    shell = "sh" if script.endswith("install.sh") else "bash"
    assert shutil.which(shell), f"{shell} missing"
    result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_windows_script_names_existing_files() -> None:
    text = (PACKAGING / "build_windows.ps1").read_text(encoding="utf-8")
    for rel in re.findall(r'"(packaging\\[^"]+\.(?:py|iss))"', text):
        assert (REPO / rel.replace("\\", "/")).is_file(), rel
    assert "$LASTEXITCODE" in text and '$ErrorActionPreference = "Stop"' in text


def test_workflow_builds_windows_and_macos() -> None:
    text = (REPO / ".github" / "workflows" / "installers.yml").read_text(encoding="utf-8")
    assert "windows-" in text and "macos-" in text
    assert "packaging/build_macos.sh" in text and "packaging\\build_windows.ps1" in text
    assert "\t" not in text


def test_icons(layout: ModuleType) -> None:
    ico = Image.open(layout.ICON_ICO)
    assert {(16, 16), (32, 32), (256, 256)} <= set(ico.info["sizes"])
    assert Image.open(layout.ICON_ICNS).format == "ICNS"
    for png in layout.RESOURCES.glob("tlgui-*.png"):
        side = int(png.stem.split("-")[1])
        assert Image.open(png).size == (side, side), png
    # Installers show the window's own artwork: the two SVGs must not drift apart.
    assert layout.ICON_SVG.read_bytes() == load("make_icons").SOURCE.read_bytes()


def test_weights_dir_resolution(layout: ModuleType, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "weights" / "models"
    models.mkdir(parents=True)
    (models / DEFAULT_WEIGHTS).write_bytes(b"h5")
    # A folder holding models/ is followed into it, as the app does.
    assert layout.resolve_weights_dir(tmp_path / "weights") == models.resolve()
    monkeypatch.setenv("TLGUI_WEIGHTS_DIR", str(models))
    assert layout.resolve_weights_dir(None) == models.resolve()
    monkeypatch.delenv("TLGUI_WEIGHTS_DIR")
    monkeypatch.setattr(layout, "REPO", tmp_path / "clone")
    with pytest.raises(layout.BuildError, match="TLGUI_WEIGHTS_DIR"):
        layout.resolve_weights_dir(None)
    with pytest.raises(layout.BuildError, match="does not exist"):
        layout.resolve_weights_dir(tmp_path / "nowhere")


def test_weight_files_need_the_default_backbone(layout: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "other_no_top.h5").write_bytes(b"h5")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(layout.BuildError, match=DEFAULT_WEIGHTS):
        layout.weight_files(tmp_path)
    (tmp_path / DEFAULT_WEIGHTS).write_bytes(b"h5")
    names = [p.name for p in layout.weight_files(tmp_path)]
    assert names == [DEFAULT_WEIGHTS, "other_no_top.h5"]
    datas = layout.app_datas(tmp_path)
    assert (str(tmp_path / DEFAULT_WEIGHTS), "weights") in datas
    assert all(Path(src).is_file() for src, _ in datas)


def test_pruning_rules(layout: ModuleType) -> None:
    assert not layout.keep_module("keras.src.layers.core.dense_test")
    assert not layout.keep_module("numpy.tests.test_public_api")
    assert layout.keep_module("keras.src.layers.core.dense")
    assert layout.keep_module("tensorflow.python.framework.test_util")
    assert layout.keep_module("unittest")
    assert not layout.keep_file("tensorflow/include/tensorflow/core/framework/op.h")
    assert not layout.keep_file("PySide6/Qt/translations/qtwebengine_de.qm")
    assert layout.keep_file("PySide6/Qt/translations/qtbase_de.qm")
    assert layout.keep_file("PySide6/Qt/plugins/platforms/libqxcb.so")
    assert layout.keep_file("weights/" + DEFAULT_WEIGHTS)
    assert not layout.keep_file("numpy\\_core\\tests\\data\\x.csv")


def test_dedupe_weights_hard_links_identical_files(build: ModuleType, tmp_path: Path) -> None:
    for name in ("a.h5", "b.h5"):
        (tmp_path / name).write_bytes(b"x" * 1000)
    (tmp_path / "c.h5").write_bytes(b"y" * 1000)
    saved = build.dedupe_weights(tmp_path)
    assert saved == 1000
    assert (tmp_path / "a.h5").samefile(tmp_path / "b.h5")
    assert not (tmp_path / "a.h5").samefile(tmp_path / "c.h5")
    assert build.tree_bytes(tmp_path) == 2000
    assert (tmp_path / "b.h5").read_bytes() == b"x" * 1000


def test_the_installer_requires_the_weights_of_the_default(layout: ModuleType) -> None:
    # A default size changed in the registry (ADR 013) must change what installers carry.
    assert layout.REQUIRED_WEIGHTS == (DEFAULT_WEIGHTS,)
