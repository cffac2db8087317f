#!/usr/bin/env bash
# Sets up .venv (if needed) and starts the tlgui window. Arguments go to the CLI instead.
. "$(dirname "$0")/_venv.sh" ""
exec .venv/bin/python -m tlgui "$@"
