#!/bin/sh
# Adds tlgui to the desktop menu of the current user (no root needed), pointing at this
# unpacked folder. Run it again after moving the folder; `install.sh --uninstall` removes
# the menu entry and icon (delete the folder yourself).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$apps/tlgui.desktop" "$icons/tlgui.png"
    echo "tlgui removed from the menu"
    exit 0
fi
mkdir -p "$apps" "$icons"
cp "$here/tlgui.png" "$icons/tlgui.png"
sed -e "s|^Exec=.*|Exec=\"$here/tlgui\"|" -e "s|^Icon=.*|Icon=$icons/tlgui.png|" \
    "$here/tlgui.desktop" > "$apps/tlgui.desktop"
chmod +x "$apps/tlgui.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "tlgui added to the menu; run it from there or with: $here/tlgui"
echo "check it works offline: $here/tlgui --self-test"
