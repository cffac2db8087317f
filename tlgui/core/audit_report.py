"""The audit as a CSV file and as a ranked summary for the terminal.

CSV columns, one row per finding, highest score first:
``path, problem, given_class, suggested_class, score, related_path``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tlgui.core.audit import AuditResult
from tlgui.core.audit_findings import (
    CSV_COLUMNS,
    PROBLEMS,
    TITLES,
    check_csv_destination,
    findings_csv_text,
    write_findings_csv,
)

__all__ = ["CSV_COLUMNS", "audit_csv_text", "check_csv_destination", "summary_lines",
           "write_audit_csv"]


def audit_csv_text(result: AuditResult) -> str:
    """The CSV text of a result: the header, then one row per finding, as sorted."""
    return findings_csv_text(result.findings)


def write_audit_csv(result: AuditResult, path: str | Path, *,
                    overwrite: bool = False) -> Path:
    """Writes the findings as CSV, atomically (see ``check_csv_destination`` first).

    Returns:
        The path written.
    """
    return write_findings_csv(result.findings, path, overwrite=overwrite)


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def summary_lines(result: AuditResult, per_problem: int = 10) -> list[str]:
    """A readable ranked summary: counts, then the top findings of each problem."""
    counts = Counter(f.problem for f in result.findings)
    kinds = Counter((f.problem, f.kind) for f in result.findings)
    lines = [
        f"{result.root}: {len(result.paths)} images, {len(result.class_names)} classes, "
        f"{result.backbone} at {result.image_size} px; out-of-fold accuracy "
        f"{result.accuracy:.1%} over {result.folds} folds.",
        "Time: " + ", ".join(f"{stage} {secs:.1f} s" for stage, secs in result.seconds.items()),
    ]
    for problem in PROBLEMS:
        detail = ", ".join(f"{n} {kind.replace('_', ' ')}" for (p, kind), n in
                           sorted(kinds.items()) if p == problem)
        lines.append(f"{TITLES[problem]}: {counts[problem]}" + (f" ({detail})" if detail
                                                                   else ""))
    for problem in PROBLEMS:
        rows = result.of(problem)[:per_problem]
        if not rows:
            continue
        lines.append("")
        lines.append(f"{TITLES[problem]}, highest score first:")
        for f in rows:
            what = f"{f.given_class} -> {f.suggested_class}" if f.suggested_class else \
                f.given_class
            also = f"  with {_shown(f.related_path, result.root)}" if f.related_path else ""
            lines.append(f"  {f.score:.3f}  {_shown(f.path, result.root)}  [{what}]{also}")
            lines.append(f"         {f.detail}")
        if counts[problem] > per_problem:
            lines.append(f"  ... and {counts[problem] - per_problem} more (see --csv)")
    if result.problems:
        lines.append("")
        lines.append(f"{len(result.problems)} file(s) could not be read:")
        lines.extend(f"  {_shown(p.path, result.root)}: {p.reason}" for p in result.problems)
    return lines
