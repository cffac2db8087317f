"""``python -m tlgui.engine``: runs the engine on this process's standard input/output."""

from __future__ import annotations

import sys

from tlgui.engine.server import main

if __name__ == "__main__":
    sys.exit(main())
