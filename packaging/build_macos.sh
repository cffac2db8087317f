#!/usr/bin/env bash
# Builds the macOS installer: dist/tlgui.app (weights inside) in
# dist/tlgui-<version>-macos-<arch>.dmg (drag the app onto the Applications link).
#
#   packaging/build_macos.sh [WEIGHTS_DIR]
#
# WEIGHTS_DIR: folder of backbone weight files to bundle. Default: $TLGUI_WEIGHTS_DIR,
# else ../shared/weights/models beside the repo. Python: $PYTHON, else .venv/bin/python,
# else a new build/venv with the project installed from PyPI (needs internet once).
# The app is ad-hoc signed by PyInstaller; set TLGUI_CODESIGN_IDENTITY to sign it with a
# Developer ID instead (notarisation is a separate step, not done here).
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

"$python" packaging/build.py bundle --weights "${1:-}"

if [[ -z "${SKIP_SELF_TEST:-}" ]]; then
    # The app must work before it is packed: train, export, reload, predict, offline.
    # Without TLGUI_WEIGHTS_DIR, which the app would search before its own weights.
    env -u TLGUI_WEIGHTS_DIR dist/tlgui.app/Contents/MacOS/tlgui --self-test
fi

version=$("$python" packaging/build.py version)
arch=$(uname -m)
dmg="dist/tlgui-$version-macos-$arch.dmg"
stage=build/dmg
rm -rf "$stage" "$dmg"
mkdir -p "$stage"
# ditto keeps the bundle's symlinks, extended attributes and signatures intact.
ditto dist/tlgui.app "$stage/tlgui.app"
ln -s /Applications "$stage/Applications"
cp docs/install.md "$stage/INSTALL.md"
hdiutil create -volname "tlgui $version" -srcfolder "$stage" -fs HFS+ \
    -format UDZO -imagekey zlib-level=9 -ov "$dmg"
hdiutil verify "$dmg"

echo
echo "built in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
"$python" packaging/build.py size dist/tlgui.app "$dmg"
