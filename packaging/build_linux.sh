#!/usr/bin/env bash
# Builds the Linux installer: dist/tlgui/ (one-folder bundle, weights inside) and
# dist/tlgui-<version>-linux-<arch>.tar.gz with a .desktop file and icon; also an
# AppImage when appimagetool is on PATH.
#
#   packaging/build_linux.sh [WEIGHTS_DIR]
#   TLGUI_EDITION=gpu packaging/build_linux.sh [WEIGHTS_DIR]
#
# Editions (docs/adr/004-gpu-backend-per-platform.md):
#   cpu (default): TensorFlow on the CPU; dist/tlgui, ...-linux-<arch>.tar.gz.
#   gpu: TensorFlow with NVIDIA's CUDA libraries (the project's "gpu" extra); trains on
#        an NVIDIA GPU (driver 525 or newer) and on the CPU where there is none;
#        dist/gpu/tlgui, ...-linux-<arch>-gpu.tar.gz. Needs about 12 GB of free disk.
#
# WEIGHTS_DIR: folder of backbone weight files to bundle. Default: $TLGUI_WEIGHTS_DIR,
# else ../shared/weights/models beside the repo. Python: $PYTHON, else .venv/bin/python
# (cpu) or build/venv-gpu/bin/python (gpu), else a new venv there with the project
# installed from PyPI (needs internet once).
set -euo pipefail
shopt -s nullglob
edition="${TLGUI_EDITION:-cpu}"
case "$edition" in
    cpu) venv=build/venv; extras="export,package"; dist=dist; suffix="" ;;
    gpu) venv=build/venv-gpu; extras="export,package,gpu"; dist=dist/gpu; suffix="-gpu" ;;
    *) echo "error: TLGUI_EDITION must be cpu or gpu, not '$edition'" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)

if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ "$edition" == cpu && -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=$venv/bin/python
    if [[ ! -x "$python" ]]; then
        echo "creating $venv (first build only)"
        python3 -m venv "$venv"
    fi
    "$python" -m pip install --quiet --upgrade pip
    "$python" -m pip install --quiet ".[$extras]"
fi
"$python" -c "import PyInstaller" 2>/dev/null || {
    echo "error: PyInstaller is not installed in $python; run: $python -m pip install '.[package]'" >&2
    exit 1
}

"$python" packaging/build.py bundle --weights "${1:-}" --edition "$edition" --dist "$dist" \
    --work "build/pyinstaller$suffix"

version=$("$python" packaging/build.py version)
arch=$(uname -m)
bundle=$dist/tlgui
cp packaging/linux/tlgui.desktop "$bundle/tlgui.desktop"
cp packaging/linux/install.sh "$bundle/install.sh"
cp resources/tlgui-256.png "$bundle/tlgui.png"
cp docs/install.md "$bundle/INSTALL.md"
chmod +x "$bundle/install.sh" "$bundle/tlgui"

tarball="dist/tlgui-$version-linux-$arch$suffix.tar.gz"
echo "compressing $tarball"
if command -v pigz >/dev/null; then
    tar -C "$dist" -cf - tlgui | pigz -6 > "$tarball.part"
else
    tar -C "$dist" -czf "$tarball.part" tlgui
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
    ARCH="$arch" appimagetool --no-appstream "$appdir" "dist/tlgui-$version-$arch$suffix.AppImage"
else
    echo "appimagetool not on PATH: no AppImage (the .tar.gz is the Linux installer)"
fi

echo
echo "built in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
"$python" packaging/build.py size "$bundle" "$tarball"
# A glob that matches nothing is empty (nullglob): no AppImage is not an error.
appimages=(dist/*"$suffix".AppImage)
if [[ ${#appimages[@]} -gt 0 ]]; then
    "$python" packaging/build.py size "${appimages[@]}"
fi
