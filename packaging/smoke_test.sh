#!/usr/bin/env bash
# Proves a Linux bundle works on an offline machine:
#   packaging/smoke_test.sh BUNDLE [OUT_DIR]
# BUNDLE: the dist/tlgui folder or the .tar.gz. OUT_DIR (default dist/smoke) receives
# self-test.log, window.png and window.log.
#
# The bundle is unpacked into a fresh temp folder and run with an empty HOME, a bare
# environment (no virtualenv, PYTHONPATH, TLGUI_* or KERAS_* variables) and from a
# working folder outside the repo. As root, it also runs in new mount and network
# namespaces: no network interface is up, and the repo (with its .venv) and the shared
# weights folder are hidden under empty tmpfs mounts, so nothing outside the bundle can
# be used. Checks, each of which fails the script:
#   1. no file of the bundle mentions the repo path;
#   2. `tlgui --self-test` exits 0 and used the weights bundled inside (not random ones),
#      with every export format checked (TLGUI_SELFTEST_FORMATS=all);
#   3. the window starts under Xvfb, is still running after $SMOKE_WINDOW_WAIT seconds
#      (default 40), the screenshot is not blank, and the app's log has no error
#      (TensorFlow loads in the background once the window is shown).
# Check 3 needs xvfb-run, xwininfo and ImageMagick; the script says what to install when
# one is missing, before it unpacks anything. SMOKE_SKIP_WINDOW=1 skips check 3 (the
# summary then says so): for a machine where those cannot be installed.
# The self-test reports the device it trained on; SMOKE_EXPECT_DEVICE=gpu (on a machine
# with an NVIDIA GPU, for the GPU edition) fails the test unless that was a GPU.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BUNDLE_DIR_OR_TARBALL [OUT_DIR]" >&2
    exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$(realpath "$1")"
out="$(realpath -m "${2:-$repo/dist/smoke}")"
wait_s="${SMOKE_WINDOW_WAIT:-40}"
skip_window="${SMOKE_SKIP_WINDOW:-0}"
expect_device="${SMOKE_EXPECT_DEVICE:-}"
if [[ "$skip_window" != 1 ]]; then
    missing=()
    command -v xvfb-run >/dev/null || missing+=("xvfb-run (Debian/Ubuntu package: xvfb)")
    command -v xwininfo >/dev/null || missing+=("xwininfo (package: x11-utils)")
    command -v convert >/dev/null || missing+=("convert and import (package: imagemagick)")
    # Qt's xcb plugin needs these system libraries (docs/install.md lists them too).
    libs=()
    # Read once: `ldconfig -p | grep -q` would fail under pipefail when grep stops early.
    known=$(ldconfig -p 2>/dev/null || true)
    for pair in libxkbcommon-x11.so.0:libxkbcommon-x11-0 libxcb-cursor.so.0:libxcb-cursor0 \
                libxcb-icccm.so.4:libxcb-icccm4 libxcb-keysyms.so.1:libxcb-keysyms1 \
                libxcb-image.so.0:libxcb-image0 libxcb-render-util.so.0:libxcb-render-util0 \
                libxcb-shape.so.0:libxcb-shape0 libxcb-randr.so.0:libxcb-randr0 \
                libEGL.so.1:libegl1 libGL.so.1:libgl1 libfontconfig.so.1:libfontconfig1; do
        [[ "$known" == *"${pair%%:*}"* ]] || libs+=("${pair##*:}")
    done
    [[ ${#libs[@]} -gt 0 ]] && missing+=("Qt's X11 libraries (packages: ${libs[*]})")
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "error: the window check needs what is not installed:" >&2
        printf '  %s\n' "${missing[@]}" >&2
        echo "install it with: sudo apt-get install xvfb x11-utils imagemagick ${libs[*]}" >&2
        echo "or run with SMOKE_SKIP_WINDOW=1 to skip the window check" >&2
        exit 2
    fi
fi
mkdir -p "$out"
tmp="$(mktemp -d /tmp/tlgui-smoke.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/work" "$tmp/out" "$tmp/tmp"

echo "== unpacking $src into $tmp"
if [[ -f "$src" ]]; then
    tar -C "$tmp" -xzf "$src"
else
    cp -a "$src" "$tmp/tlgui"
fi
app="$tmp/tlgui"
[[ -x "$app/tlgui" ]] || { echo "FAIL: no executable $app/tlgui" >&2; exit 1; }

echo "== 1. references to the build tree ($repo)"
if refs=$(grep -rlF "$repo" "$app"); then
    echo "FAIL: these bundle files mention $repo:"
    echo "$refs" | head -20
    exit 1
fi
echo "none"

# The checks that run isolated; written to a file so they can run in new namespaces.
cat > "$tmp/inner.sh" <<'INNER'
#!/bin/bash
set -uo pipefail
app="$1"; out="$2"; wait_s="$3"; skip_window="$4"; expect_device="$5"; shift 5
status=0
for hide in "$@"; do
    if [[ -d "$hide" ]] && mount -t tmpfs -o ro,size=1m tlgui-smoke-hidden "$hide"; then
        echo "hidden: $hide ($(ls -A "$hide" | wc -l) entries visible)"
    fi
done
if (exec 3<>/dev/tcp/1.1.1.1/443) 2>/dev/null; then
    echo "network: REACHABLE (not isolated)"
else
    echo "network: unreachable"
fi
echo "HOME=$HOME ($(ls -A "$HOME" | wc -l) entries), cwd=$PWD, PATH=$PATH"
env | grep -E '^(VIRTUAL_ENV|PYTHON|TLGUI_|KERAS_)' && echo "environment not clean" && status=1

echo "== 2. tlgui --self-test"
t0=$(date +%s)
TLGUI_SELFTEST_FORMATS=all "$app/tlgui" --self-test > "$out/self-test.log" \
    2> "$out/self-test.stderr"
rc=$?
cat "$out/self-test.log"
echo "exit code $rc after $(( $(date +%s) - t0 )) s"
if [[ $rc -ne 0 ]]; then
    echo "FAIL: self-test exit code $rc; stderr tail:"; tail -20 "$out/self-test.stderr"; status=1
elif ! grep -q '^weights: bundled: ' "$out/self-test.log"; then
    echo "FAIL: the self-test did not use the bundled weights"; status=1
elif ! grep -q '^SELF-TEST PASSED$' "$out/self-test.log"; then
    echo "FAIL: no SELF-TEST PASSED line"; status=1
elif ! grep -q '^device: ' "$out/self-test.log"; then
    echo "FAIL: the self-test did not say which device it used"; status=1
elif [[ "$expect_device" == gpu ]] && ! grep -q '^device: gpu' "$out/self-test.log"; then
    echo "FAIL: SMOKE_EXPECT_DEVICE=gpu but the self-test did not train on a GPU"; status=1
fi

if [[ "$skip_window" == 1 ]]; then
    echo "== 3. window under Xvfb: SKIPPED (SMOKE_SKIP_WINDOW=1)"
    exit $status
fi

echo "== 3. window under Xvfb (screenshot after $wait_s s)"
xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
    "$1/tlgui" > "$2/window.log" 2>&1 &
    pid=$!
    sleep "$3"
    if kill -0 $pid 2>/dev/null; then alive=yes; else alive=no; fi
    xwininfo -root -tree 2>/dev/null | grep -iE "tlgui|classifier" | head -5 > "$2/windows.txt" || true
    import -window root "$2/window.png" 2>>"$2/window.log" \
        || xwd -root -silent | convert xwd:- "$2/window.png"
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    [ "$alive" = yes ]
' _ "$app" "$out" "$wait_s"
wrc=$?
colors=$(convert "$out/window.png" -format %k info: 2>/dev/null || echo 0)
echo "windows: $(tr '\n' ' ' < "$out/windows.txt" 2>/dev/null)"
echo "screenshot: $out/window.png, $colors colours"
if [[ $wrc -ne 0 ]]; then
    echo "FAIL: the window process exited within $wait_s s; log tail:"
    tail -20 "$out/window.log"; status=1
elif [[ $colors -lt 16 ]]; then
    echo "FAIL: the screenshot is blank ($colors colours)"; status=1
fi
# Exceptions in Qt slots go to stderr, not to the log.
if grep -n -A3 "Traceback" "$out/window.log" > "$out/window-errors.txt"; then
    echo "FAIL: the window printed a traceback:"; head -30 "$out/window-errors.txt"; status=1
fi
applog=$(find "$HOME" -name tlgui.log | head -1)
if [[ -z "$applog" ]]; then
    echo "FAIL: the app wrote no log file under HOME"; status=1
else
    cp "$applog" "$out/app.log"
    if grep -nE "Traceback|ERROR|CRITICAL| failed" "$applog" > "$out/app-errors.txt"; then
        echo "FAIL: the app logged errors:"; head -20 "$out/app-errors.txt"; status=1
    else
        echo "app log: no errors ($(wc -l < "$applog") lines)"
    fi
fi
echo "files the app wrote under HOME:"
(cd "$HOME" && find . -type f | head -20)
exit $status
INNER
chmod +x "$tmp/inner.sh"

hidden=("$repo")
[[ -d "$repo/../shared" ]] && hidden+=("$(realpath "$repo/../shared")")
bare_env=(env -i HOME="$tmp/home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8
          TMPDIR="$tmp/tmp" USER="${USER:-root}")
cd "$tmp/work"
if [[ $EUID -eq 0 ]] && unshare --mount --net true 2>/dev/null; then
    echo "== isolation: new mount and network namespaces"
    set +e
    unshare --mount --net --fork "${bare_env[@]}" bash "$tmp/inner.sh" \
        "$app" "$tmp/out" "$wait_s" "$skip_window" "$expect_device" "${hidden[@]}"
    rc=$?
    set -e
else
    echo "== isolation: NOT available (needs root and unshare): network and repo stay visible"
    set +e
    "${bare_env[@]}" bash "$tmp/inner.sh" "$app" "$tmp/out" "$wait_s" "$skip_window" \
        "$expect_device"
    rc=$?
    set -e
fi
cp -a "$tmp/out/." "$out/"
echo
skipped=""
[[ "$skip_window" == 1 ]] && skipped=", window check skipped"
if [[ $rc -eq 0 ]]; then echo "SMOKE TEST PASSED (outputs in $out$skipped)"; else echo "SMOKE TEST FAILED (outputs in $out$skipped)"; fi
exit $rc
