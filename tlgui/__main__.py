"""``python -m tlgui``: the window without arguments, the command line with them."""

from __future__ import annotations

import sys


def main() -> int:
    """Starts the app, the engine process (``--engine``), or the CLI when arguments are given."""
    if sys.argv[1:2] == ["--engine"]:
        # A bundled app starts its engine as itself with this flag (see engine.client).
        from tlgui.engine.server import main as engine_main

        return engine_main()
    if len(sys.argv) > 1:
        from tlgui.cli import main as cli_main

        return cli_main()
    from tlgui.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
