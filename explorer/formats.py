"""Report rows as a text table, CSV or JSON (``explorer report --format``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from explorer.report import FIELDS, ReportRow

UNPRICED = "unpriced"
TABLE_FIELDS = tuple(f for f in FIELDS if f not in ("unpriced_calls", "unpriced_tokens"))
"""The table's columns: the unpriced counts are told inside the cost cell."""


def unpriced_part(calls: int, tokens: int) -> str:
    """``N calls (and T tokens) unpriced``, or empty when nothing is unpriced."""
    if not calls:
        return ""
    noun = "call" if calls == 1 else "calls"
    told = f"{calls:,} {noun}" + (f" (and {tokens:,} tokens)" if tokens else "")
    return f"{told} unpriced"


def describe_cost(
    usd: float | None, calls: int, tokens: int, money: Callable[[float], str] = "{:.4f}".format
) -> str:
    """A total that never blanks: the priced cost (as ``money`` writes it) plus the unpriced."""
    unpriced = unpriced_part(calls, tokens)
    if usd is None:
        return unpriced or UNPRICED
    priced = money(usd)
    return f"{priced} + {unpriced}" if unpriced else priced


def plain(value: object) -> object:
    """A float as plain decimal digits (``0.000015``, never ``1.5e-05``); others unchanged."""
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return "" if value is None else value


def csv_text(header: Sequence[str], rows: Iterable[Iterable[object]]) -> str:
    """CSV with ``header``, None as empty and floats without exponents."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([plain(value) for value in row] for row in rows)
    return buffer.getvalue()


def as_json(rows: Sequence[ReportRow]) -> str:
    return json.dumps([row.as_dict() for row in rows], indent=2)


def as_csv(rows: Sequence[ReportRow]) -> str:
    return csv_text(FIELDS, (row.as_dict().values() for row in rows))


def _cell(field: str, row: ReportRow) -> str:
    value = getattr(row, field)
    if field == "cost_usd":
        return describe_cost(row.cost_usd, row.unpriced_calls, row.unpriced_tokens)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def text_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[str] = ()
) -> str:
    """Aligned columns for a terminal: text left, the ``numeric`` columns right."""
    cells = [list(header)] + [list(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    right = set(numeric)
    lines = [
        "  ".join(
            value.rjust(width) if field in right else value.ljust(width)
            for field, value, width in zip(header, line, widths, strict=True)
        ).rstrip()
        for line in cells
    ]
    return "\n".join(lines) + "\n"


def as_table(rows: Sequence[ReportRow], shown: Sequence[str] = TABLE_FIELDS) -> str:
    """Aligned columns for a terminal; ``shown`` leaves out the keys the rows do not group by."""
    text_columns = {"user_id", "model", "day"}
    return text_table(
        shown,
        ([_cell(f, row) for f in shown] for row in rows),
        numeric=[f for f in shown if f not in text_columns],
    )
