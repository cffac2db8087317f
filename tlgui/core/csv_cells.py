"""CSV text that every reader splits into the same rows and no spreadsheet runs.

Every CSV file tlgui writes (predictions, audit findings) is made here, so that all
follow one rule:

- A text cell never holds a control character: a file name may contain a carriage
  return or a line feed, and ``csv.writer`` with ``"\\n"`` line ends leaves a lone
  ``"\\r"`` unquoted, which many readers (and spreadsheets) take as the end of the row:
  the rest of the name would start a new row, its next cell unneutralised. Control
  characters (C0, DEL and C1) are written as ``\\xNN`` escapes, the way ``printable``
  writes bytes that are not UTF-8.
- Spreadsheets run a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula
  (and some also one that begins with a tab or a carriage return): a file or class named
  ``=HYPERLINK(...)`` would become a live link, or worse. As OWASP recommends, such a
  cell is written with a single quote in front (``'=HYPERLINK(...)``), which a
  spreadsheet shows as text. This is done after escaping, on what is written.
- Numbers are written by the writer itself (``float`` cells, six decimals), so they are
  never taken for text nor neutralised.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

Cell = str | float


def spreadsheet_safe(text: str) -> str:
    """A cell that a spreadsheet shows as text: a quote before a formula's first character."""
    return "'" + text if text.startswith(FORMULA_START) else text


def escape_controls(text: str) -> str:
    """``text`` with each control character written as a ``\\xNN`` escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def text_cell(text: str) -> str:
    """A text cell as written: control characters escaped, then neutralised."""
    return spreadsheet_safe(escape_controls(text))


def _cell(value: Cell) -> str:
    return text_cell(value) if isinstance(value, str) else f"{float(value):.6f}"


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """The CSV text of a header and rows; ``str`` cells are text (``text_cell``),
    anything else a number (six decimals)."""
    return csv_lines([list(header)]) + csv_lines(rows)


def csv_lines(rows: Iterable[Sequence[Cell]]) -> str:
    """The CSV text of rows alone, cells as in ``csv_text``: a file written a few rows
    at a time reads the same as one written at once."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([_cell(c) for c in row])
    return buf.getvalue()
