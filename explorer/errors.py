"""Failed calls grouped by model, status and error type, with when each was first and last seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from explorer.index import Index
from explorer.partitions import Selection
from explorer.report import where_clause


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Calls of one model that failed the same way."""

    model: str | None
    status: int | None
    """The upstream's HTTP status; None when no response came (a timeout, a refused call)."""
    error_type: str | None
    calls: int
    users: int
    first_seen: datetime
    last_seen: datetime


def error_groups(index: Index, selection: Selection) -> list[ErrorGroup]:
    """The failed calls of ``selection`` by model, status and type, most frequent first."""
    index.sync(selection)
    where, params = where_clause(selection)
    with index.connection() as con:
        rows = con.execute(
            f"""
            SELECT model, status, error_type, count(*), count(DISTINCT user_id),
                   min(ts), max(ts)
            FROM calls WHERE {where} AND is_error
            GROUP BY model, status, error_type
            ORDER BY model NULLS LAST, count(*) DESC, status NULLS LAST, error_type
            """,
            params,
        ).fetchall()
    return [ErrorGroup(*row) for row in rows]
