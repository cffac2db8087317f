# Sourced by run.sh and test.sh: creates .venv on first use and installs tlgui into it.
# Usage: . scripts/_venv.sh EXTRAS   (EXTRAS like "[test,jax]" or "")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ -n "${1:-}" ]; then .venv/bin/python -m pip install -q -e ".${1}"; else .venv/bin/python -m pip install -q -e .; fi
