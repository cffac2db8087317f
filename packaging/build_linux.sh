#!/usr/bin/env bash
# Builds the Linux installer: dist/tlgui/ (one-folder bundle, weights inside) and
# dist/tlgui-<version>-linux-<arch>.tar.gz with a .desktop file and icon; also an
# AppImage when appimagetool is on PATH.
#
#   packaging/build_linux.sh [WEIGHTS_DIR]
#
# WEIGHTS_DIR: folder of backbone weight files to bundle. Default: $TLGUI_WEIGHTS_DIR,
# else ../shared/weights/models beside the repo. Python: $PYTHON, else .venv/bin/python,
# else a new build/venv with the project installed from PyPI (needs internet once).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)

if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=build/venv/bin/python
    if [[ ! -x "$python" ]]; then
        echo "creating build/venv (first build only)"
        python3 -m venv build/venv
    fi
    "$python" -m pip install --quiet --upgrade pip
    "$python" -m pip install --quiet ".[export,package]"
fi
"$python" -c "import PyInstaller" 2>/dev/null || {
    echo "error: PyInstaller is not installed in $python; run: $python -m pip install '.[package]'" >&2
    exit 1
}

"$python" packaging/build.py bundle --weights "${1:-}"

version=$("$python" packaging/build.py version)
arch=$(uname -m)
bundle=dist/tlgui
cp packaging/linux/tlgui.desktop "$bundle/tlgui.desktop"
cp packaging/linux/install.sh "$bundle/install.sh"
cp resources/tlgui-256.png "$bundle/tlgui.png"
cp docs/install.md "$bundle/INSTALL.md"
chmod +x "$bundle/install.sh" "$bundle/tlgui"

tarball="dist/tlgui-$version-linux-$arch.tar.gz"
echo "compressing $tarball"
if command -v pigz >/dev/null; then
    tar -C dist -cf - tlgui | pigz -6 > "$tarball.part"
else
    tar -C dist -czf "$tarball.part" tlgui
fi
mv "$tarball.part" "$tarball"

if command -v appimagetool >/dev/null; then
    appdir=build/tlgui.AppDir
    rm -rf "$appdir"
    mkdir -p "$appdir/usr"
    cp -a "$bundle" "$appdir/usr/tlgui"
    ln -s usr/tlgui/tlgui "$appdir/AppRun"
    sed 's|^Exec=.*|Exec=tlgui|' packaging/linux/tlgui.desktop > "$appdir/tlgui.desktop"
    cp resources/tlgui-256.png "$appdir/tlgui.png"
    ARCH="$arch" appimagetool --no-appstream "$appdir" "dist/tlgui-$version-$arch.AppImage"
else
    echo "appimagetool not on PATH: no AppImage (the .tar.gz is the Linux installer)"
fi

echo
echo "built in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
"$python" packaging/build.py size "$bundle" "$tarball"
ls dist/*.AppImage 2>/dev/null | xargs -r "$python" packaging/build.py size
