"""The query string of every page and export, parsed once into the explorer's filters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from fastapi import HTTPException, Request

from explorer.calls import STATUS_CHOICES, CallFilter
from explorer.partitions import Selection

DEFAULT_DAYS = 30
PAGE_ROWS = 50


@dataclass(frozen=True, slots=True)
class ViewParams:
    """What a page shows; ``query()`` rebuilds its query string (for links and exports)."""

    day_from: date
    day_to: date
    user: str | None = None
    model: str | None = None
    by: Literal["model", "user"] = "model"
    status: str = ""
    error_type: str = ""
    text: str = ""
    page: int = 1

    @property
    def selection(self) -> Selection:
        return Selection(self.day_from, self.day_to, self.user, self.model)

    @property
    def call_filter(self) -> CallFilter:
        return CallFilter(self.selection, self.status, self.error_type, self.text)

    def query(self, **changes: object) -> str:
        view = replace(self, **changes)  # type: ignore[arg-type]
        pairs = {
            "from": view.day_from.isoformat(),
            "to": view.day_to.isoformat(),
            "user": view.user or "",
            "model": view.model or "",
            "by": view.by,
            "status": view.status,
            "error_type": view.error_type,
            "q": view.text,
            "page": str(view.page) if view.page > 1 else "",
        }
        return urlencode({key: value for key, value in pairs.items() if value})


def _day(value: str | None, default: date, name: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name}: not a day (YYYY-MM-DD): {value!r}") from None


def view_params(request: Request) -> ViewParams:
    """Parse the query string; a bad value is a 400 that names it."""
    query = request.query_params
    today = datetime.now(UTC).date()
    day_to = _day(query.get("to"), today, "to")
    day_from = _day(query.get("from"), day_to - timedelta(days=DEFAULT_DAYS - 1), "from")
    if day_from > day_to:
        raise HTTPException(400, "from is after to")
    by = query.get("by") or "model"
    if by not in ("model", "user"):
        raise HTTPException(400, "by: model or user")
    status = query.get("status", "")
    if status not in STATUS_CHOICES and not status.isdigit():
        raise HTTPException(400, f"status: one of {', '.join(STATUS_CHOICES[1:])} or a code")
    page_text = query.get("page") or "1"
    if not page_text.isdigit() or int(page_text) < 1:
        raise HTTPException(400, "page: a number from 1")
    return ViewParams(
        day_from=day_from,
        day_to=day_to,
        user=query.get("user") or None,
        model=query.get("model") or None,
        by=by,  # type: ignore[arg-type]
        status=status,
        error_type=query.get("error_type", ""),
        text=query.get("q", "").strip(),
        page=int(page_text),
    )
