"""The request list: one row per record, filtered and newest first, from the ``calls`` table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import duckdb

from explorer.index import Index
from explorer.partitions import Selection
from explorer.report import where_clause
from explorer.search import search

STATUS_CHOICES = ("", "ok", "error", "2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What the request list shows: a selection plus status, error type and text."""

    selection: Selection
    status: str = ""
    """``ok``, ``error``, a class such as ``4xx``, an exact code, or empty for all."""
    error_type: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class CallRow:
    id: str
    timestamp: datetime
    user_id: str | None
    model: str | None
    method: str | None
    path: str | None
    status: int | None
    streaming: bool
    error_type: str | None
    duration_ms: float | None
    ttfb_ms: float | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int

    def as_dict(self) -> dict[str, Any]:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        values["timestamp"] = self.timestamp.isoformat()
        return values


COLUMNS = tuple(field.name for field in fields(CallRow))
_SELECT = ", ".join("ts AS timestamp" if name == "timestamp" else name for name in COLUMNS)


class BadFilter(ValueError):
    """A filter value the request list does not understand."""


def _status_condition(status: str, params: dict[str, object]) -> str:
    if status in ("", "all"):
        return "true"
    if status == "ok":
        return "NOT is_error"
    if status == "error":
        return "is_error"
    if len(status) == 3 and status[0] in "12345" and status[1:] == "xx":
        params["status_class"] = int(status[0])
        return "status // 100 = $status_class"
    if status.isdigit():
        params["status_code"] = int(status)
        return "status = $status_code"
    raise BadFilter(f"unknown status filter {status!r}")


def _where(call_filter: CallFilter, ids: set[str] | None) -> tuple[str, dict[str, object]]:
    where, params = where_clause(call_filter.selection)
    where += " AND " + _status_condition(call_filter.status, params)
    if call_filter.error_type:
        where += " AND error_type = $error_type"
        params["error_type"] = call_filter.error_type
    if ids is not None:
        where += " AND id IN (SELECT unnest($ids))"
        params["ids"] = sorted(ids)
    return where, params


def _text_matches(index: Index, call_filter: CallFilter, wanted: int | None) -> set[str] | None:
    if not call_filter.text:
        return None

    def enough(ids: set[str]) -> bool:
        if wanted is None:
            return False
        where, params = _where(call_filter, ids)
        with index.connection() as con:
            row = con.execute(f"SELECT count(*) FROM calls WHERE {where}", params).fetchone()
        return row is not None and row[0] >= wanted

    return search(index.store, index.listing(), call_filter.selection, call_filter.text, enough)


def list_calls(
    index: Index, call_filter: CallFilter, limit: int, offset: int = 0
) -> tuple[list[CallRow], bool]:
    """A page of rows, newest first, and whether another page follows."""
    index.sync(call_filter.selection)
    ids = _text_matches(index, call_filter, offset + limit + 1)
    where, params = _where(call_filter, ids)
    params.update(limit=limit + 1, offset=offset)
    with index.connection() as con:
        rows = con.execute(
            f"SELECT {_SELECT} FROM calls WHERE {where} "
            "ORDER BY ts DESC, id DESC LIMIT $limit OFFSET $offset",
            params,
        ).fetchall()
    page = [CallRow(*row) for row in rows[:limit]]
    return page, len(rows) > limit


def iter_calls(index: Index, call_filter: CallFilter, chunk_rows: int = 5000) -> Iterator[CallRow]:
    """Every matching row, newest first, read in chunks (for exports)."""
    index.sync(call_filter.selection)
    ids = _text_matches(index, call_filter, None)
    where, params = _where(call_filter, ids)
    with index.connection() as con:
        # A cursor is a connection of its own: the export streams without holding the lock.
        cursor: duckdb.DuckDBPyConnection = con.cursor()
    cursor.execute("SET TimeZone = 'UTC'")
    cursor.execute(f"SELECT {_SELECT} FROM calls WHERE {where} ORDER BY ts DESC, id DESC", params)
    try:
        while chunk := cursor.fetchmany(chunk_rows):
            for row in chunk:
                yield CallRow(*row)
    finally:
        cursor.close()


def error_types(index: Index, selection: Selection) -> list[str]:
    """The error types present in ``selection`` (for the filter's choices)."""
    where, params = where_clause(selection)
    with index.connection() as con:
        rows = con.execute(
            f"SELECT DISTINCT error_type FROM calls WHERE {where} AND is_error ORDER BY 1",
            params,
        ).fetchall()
    return [row[0] for row in rows]
