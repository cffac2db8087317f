"""``tlgui cache``: what the decoded-image cache holds, its limit, clearing and pruning it
(no Keras needed)."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from tlgui.core import cache_control as cc
from tlgui.core.entries import printable


def add_parser(sub: Any) -> None:
    """Adds ``cache``, ``cache show``, ``cache clear``, ``cache prune`` and ``cache limit``
    to the ``tlgui`` parser."""
    c = sub.add_parser("cache", help="the decoded-image cache: space used, limit, clear",
                       description="Decoded images are kept so that the next run does not "
                                   "decode them again. Without a sub-command: show.")
    c.set_defaults(func=cmd_show)
    csub = c.add_subparsers(dest="cache_command")
    csub.add_parser("show", help="folder, space used, entries, limit, space per dataset"
                    ).set_defaults(func=cmd_show)
    csub.add_parser("clear", help="remove every decoded image tlgui cached"
                    ).set_defaults(func=cmd_clear)
    csub.add_parser("prune", help="remove what datasets that no longer exist left, then "
                                  "bring the cache under its limit").set_defaults(func=cmd_prune)
    lim = csub.add_parser("limit", help="show or set the most space the cache takes",
                          description="Sizes like 20GB, 500MB, 1.5TB. 'default' goes back to "
                                      "the default (10%% of the disk, 1 to 50 GB).")
    lim.add_argument("size", nargs="?", default=None, help="new limit, or 'default'")
    lim.set_defaults(func=cmd_limit)


def _reporter() -> Any:
    from tlgui.cli import ConsoleReporter

    return ConsoleReporter()


def _walk_cancel() -> Any:
    from tlgui.cli_interrupt import ctrl_c_cancels

    cancel = threading.Event()
    return cancel, ctrl_c_cancels(cancel, "reading the cache")


def _limit_line(limit: int, is_default: bool) -> str:
    how = " (the default: 10% of the disk, 1 to 50 GB)" if is_default else ""
    return f"Limit:   {cc.format_size(limit)}{how}"


def cmd_show(args: argparse.Namespace) -> int:
    """Prints the folder, space used, entries, limit and the space per dataset."""
    cancel, guard = _walk_cancel()
    with guard:
        s = cc.inspect(report=_reporter(), cancel=cancel)
    print(f"Folder:  {printable(s.root)}")
    print(f"Used:    {cc.format_size(s.nbytes)} in {s.entries:,} decoded images")
    print(_limit_line(s.limit, s.limit_is_default))
    if s.datasets:
        print("By dataset folder:")
        for d in s.datasets:
            gone = "" if d.exists else "  (folder no longer exists: 'tlgui cache prune')"
            print(f"  {cc.format_size(d.nbytes):>8}  {d.entries:>9,} images at {d.size} px  "
                  f"{printable(d.folder)}{gone}")
    if s.unknown_entries:
        print(f"  {cc.format_size(s.unknown_bytes):>8}  {s.unknown_entries:>9,} images of "
              "no known folder (cached before tlgui kept track)")
    if s.strays:
        print(f"{s.strays} thing(s) in the folder that tlgui did not make: left alone")
    return 0


def _removed(what: str, r: cc.Removed) -> None:
    print(f"{what} {r.entries:,} decoded images ({cc.format_size(r.nbytes)}).")
    for folder in r.datasets:
        print(f"  forgot the dataset {printable(folder)}")
    if r.strays:
        print(f"Left {r.strays} thing(s) tlgui did not make.")


def cmd_clear(args: argparse.Namespace) -> int:
    """Removes everything tlgui cached (a cache: nothing to confirm)."""
    cancel, guard = _walk_cancel()
    with guard:
        removed = cc.clear(report=_reporter(), cancel=cancel)
    _removed(f"Cleared {printable(cc.pixels_dir())}: removed", removed)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Removes what deleted datasets left, then trims the cache to its limit."""
    cancel, guard = _walk_cancel()
    with guard:
        removed = cc.prune(report=_reporter(), cancel=cancel)
    _removed("Removed", removed)
    return 0


def cmd_limit(args: argparse.Namespace) -> int:
    """Shows the limit, or sets it (kept for the window and the command line)."""
    if args.size is not None:
        cc.save_limit(None if args.size.strip().lower() == "default"
                      else cc.parse_size(args.size))
        print("Saved. It applies from the next job on (or 'tlgui cache prune' now).")
    saved = cc.saved_limit()
    print(_limit_line(cc.effective_limit(), saved is None))
    return 0
