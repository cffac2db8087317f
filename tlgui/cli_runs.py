"""``tlgui runs``: list the runs, show one in full, compare several (no Keras needed)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from tlgui.core.entries import printable
from tlgui.core.run_catalog import RunRecord, format_duration, list_run_records, resolve_run
from tlgui.core.run_compare import (
    Comparison,
    RunDetails,
    compare_runs,
    flatten,
    format_value,
    load_details,
)


def _pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.1%}"


def _show(lines: Sequence[str]) -> None:
    """Prints lines; everything in them was read from run folders (names, labels, notes,
    settings), so each is escaped: no planted escape sequence reaches the terminal."""
    print("\n".join(printable(line) for line in lines))


def _cells(rows: Sequence[Sequence[object]]) -> list[list[str]]:
    """Table cells as escaped text (escaped before the column widths are measured)."""
    return [[printable(str(c)) for c in row] for row in rows]


def _table(rows: Sequence[Sequence[str]], indent: str = "", right: bool = True) -> list[str]:
    """Columns two spaces apart: the first left-aligned, the others right-aligned
    (figures) or left-aligned (``right=False``)."""
    rows = _cells(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.rjust(w) if i and right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in rows]


def add_parser(sub: Any) -> None:
    """Adds ``runs``, ``runs show`` and ``runs compare`` to the ``tlgui`` parser."""
    r = sub.add_parser("runs", help="list earlier runs; show one; compare several",
                       description="Without a sub-command: every run, newest first. RUN is "
                                   "a run folder or its name in the runs folder.")
    r.set_defaults(func=cmd_list)
    rsub = r.add_subparsers(dest="runs_command")
    s = rsub.add_parser("show", help="everything about one run")
    s.add_argument("run", metavar="RUN")
    s.set_defaults(func=cmd_show)
    c = rsub.add_parser("compare", help="accuracy per phase and class, and differing settings")
    c.add_argument("first", metavar="RUN")
    c.add_argument("others", metavar="RUN", nargs="+")
    c.set_defaults(func=cmd_compare)


def cmd_list(args: argparse.Namespace) -> int:
    """Prints every run, newest first."""
    records = list_run_records()
    if not records:
        print("No runs yet.")
        return 0
    rows = [("RUN", "NAME", "STATE", "BACKBONE", "SIZE", "PHASE 1", "PHASE 2", "EPOCHS",
             "TIME", "DATASET")]
    for r in records:
        rows.append((r.path.name, r.label or "-", r.state, r.backbone or "?",
                     str(r.image_size or "?"), _pct(r.phase_accuracy.get(1)),
                     _pct(r.phase_accuracy.get(2)), str(r.epochs), format_duration(r.duration_s),
                     str(r.dataset or "?")))
    cells = _cells(rows)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    _show(["  ".join(c.rjust(w) if 4 <= i <= 8 else c.ljust(w)
                     for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
           for row in cells])
    return 0


def _record_lines(r: RunRecord) -> list[str]:
    lines = [f"Run       {r.path.name}" + (f'  "{r.label}"' if r.label else ""),
             f"Folder    {r.path}"]
    if r.note:
        # Split on line feeds only: other breaks are escaped where they stand.
        lines += [f"Note      {line}" for line in r.note.split("\n")[:1]]
        lines += [f"          {line}" for line in r.note.split("\n")[1:]]
    lines += [f"State     {r.state}" + (f" ({r.reason})" if r.reason else ""),
              f"Dataset   {r.dataset or '?'}",
              f"Started   {r.started or '?'}; took {format_duration(r.duration_s)}",
              f"Model     {r.backbone or '?'}, {r.image_size or '?'} px, "
              + ("model.keras saved" if r.has_model else "no model saved")]
    return lines


def cmd_show(args: argparse.Namespace) -> int:
    """Prints one run: settings, accuracy per phase and class, files."""
    d = load_details(resolve_run(args.run))
    lines = _record_lines(d.record)
    lines.append(f"Classes   {', '.join(d.class_names) or '?'}")
    lines += ["", "Settings"]
    settings = flatten(d.config)
    if settings:
        lines += _table([(k, format_value(v)) for k, v in settings.items()], "  ", right=False)
    else:
        lines.append("  config.json is missing or unreadable")
    lines += ["", f"Best validation accuracy ({d.record.epochs} epochs)"]
    if d.record.phase_accuracy:
        lines += _table([(f"phase {p}", _pct(a)) for p, a in
                         sorted(d.record.phase_accuracy.items())], "  ")
    else:
        lines.append("  no epoch finished")
    lines += ["", *_evaluation_lines(d), "", "Files"]
    lines += _table([(name, _size(size) if size else "folder") for name, size in d.files], "  ")
    _show(lines)
    return 0


def _evaluation_lines(d: RunDetails) -> list[str]:
    ev = d.evaluation
    if ev is None:
        return [f"Evaluation: {d.evaluation_problem or 'not evaluated'}"]
    rows = [("class", "precision", "recall", "images")]
    rows += [(m.name, _pct(m.precision), _pct(m.recall), str(m.support)) for m in ev.per_class]
    return [f"Evaluation on {ev.total} {ev.split} images: accuracy {_pct(ev.accuracy)}, "
            f"{len(ev.misses)} misclassified", *_table(rows, "  ")]


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def cmd_compare(args: argparse.Namespace) -> int:
    """Prints runs side by side: accuracy per phase and class, differing settings."""
    c = compare_runs([resolve_run(ref) for ref in (args.first, *args.others)])
    _show(comparison_lines(c))
    return 0


def comparison_lines(c: Comparison) -> list[str]:
    """The comparison as text lines (runs numbered [1], [2]... in the columns)."""
    heads = [f"[{i + 1}]" for i in range(len(c.runs))]
    lines = [f"{h} {d.record.name} ({d.path})" for h, d in zip(heads, c.runs, strict=True)]
    rows: list[tuple[str, ...]] = [("", *heads)]
    rows += [(f"phase {p} best", *(_pct(d.record.phase_accuracy.get(p)) for d in c.runs))
             for p in c.phases]
    rows.append(("evaluation", *(_pct(d.evaluation.accuracy) if d.evaluation else "–"
                                 for d in c.runs)))
    rows.append(("recall per class", *("" for _ in c.runs)))
    for name in c.class_names:
        rows.append((f"  {name}", *(_pct((d.recall or {}).get(name)) for d in c.runs)))
    lines += ["", *_table(rows), ""]
    if not c.differences:
        lines.append("The settings are the same.")
    else:
        lines.append("Settings that differ")
        lines += _table([("", *heads)] + [(f"  {diff.key}", *(format_value(v)
                                                              for v in diff.values))
                                          for diff in c.differences])
    return lines
