#!/usr/bin/env bash
# Sets up .venv (if needed) and runs every check: ruff, mypy --strict on the core,
# the import contract (core never imports Qt), and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,jax]"
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check tlgui tests bench packaging
.venv/bin/mypy --strict tlgui/core
.venv/bin/lint-imports
.venv/bin/python -m pytest -rs "$@"
