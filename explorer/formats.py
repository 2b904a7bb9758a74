"""Report rows as a text table, CSV or JSON (``explorer report --format``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from explorer.report import FIELDS, ReportRow

UNPRICED = "unpriced"


def as_json(rows: Sequence[ReportRow]) -> str:
    return json.dumps([row.as_dict() for row in rows], indent=2)


def as_csv(rows: Sequence[ReportRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row.as_dict().values()])
    return buffer.getvalue()


def _cell(field: str, value: object) -> str:
    if field == "cost_usd":
        return UNPRICED if value is None else f"{value:.4f}"
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def as_table(rows: Sequence[ReportRow], shown: Sequence[str] = FIELDS) -> str:
    """Aligned columns for a terminal; ``shown`` leaves out the keys the rows do not group by."""
    cells = [list(shown)] + [[_cell(f, row.as_dict()[f]) for f in shown] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(shown))]
    text_columns = {"user_id", "model", "day"}
    lines = []
    for line in cells:
        lines.append(
            "  ".join(
                value.ljust(width) if field in text_columns else value.rjust(width)
                for field, value, width in zip(shown, line, widths, strict=True)
            ).rstrip()
        )
    return "\n".join(lines) + "\n"
