#!/usr/bin/env bash
# Sets up .venv (if needed) and runs every check: ruff, mypy --strict on the core,
# the import contract (core never imports Qt), and the whole pytest suite.
. "$(dirname "$0")/_venv.sh" "[test,jax]"
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check .
.venv/bin/mypy --strict tlgui/core tlgui/engine
.venv/bin/lint-imports
# Slow end-to-end checks (-m slow) are left to whoever changes what they cover.
.venv/bin/python -m pytest -rs -m "not slow" "$@"
