"""``python -m tlgui``: the window without arguments, the command line with them."""

from __future__ import annotations

import sys


def main() -> int:
    """Starts the app, or the CLI when arguments are given."""
    if len(sys.argv) > 1:
        from tlgui.cli import main as cli_main

        return cli_main()
    from tlgui.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
