"""Exports of the current view: the overview's rows or the request list, as CSV or JSONL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from explorer.calls import COLUMNS, BadFilter, iter_calls
from explorer.formats import plain
from explorer.report import FIELDS, report
from explorer.web.params import ViewParams, view_params
from explorer.web.state import Explorer

router = APIRouter(prefix="/export")
Params = Annotated[ViewParams, Depends(view_params)]
Format = Literal["csv", "jsonl"]
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _lines(fields: tuple[str, ...], rows: Iterable[dict[str, Any]], fmt: Format) -> Iterator[str]:
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([plain(value) for value in row.values()])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _download(lines: Iterator[str], name: str, fmt: Format) -> StreamingResponse:
    return StreamingResponse(
        lines,
        media_type=_MEDIA[fmt],
        headers={"content-disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@router.get("/overview.{fmt}")
def overview_export(request: Request, fmt: Format, view: Params) -> StreamingResponse:
    """The overview's per-day rows, split by model or user, as the page shows them."""
    explorer: Explorer = request.app.state.explorer
    rows = report(explorer.index, view.selection, ("day", view.by), explorer.prices)
    name = f"overview-{view.day_from}-{view.day_to}"
    return _download(_lines(FIELDS, (row.as_dict() for row in rows), fmt), name, fmt)


@router.get("/requests.{fmt}")
def requests_export(request: Request, fmt: Format, view: Params) -> StreamingResponse:
    """Every row of the request list under the current filters (all pages)."""
    explorer: Explorer = request.app.state.explorer
    try:
        calls = iter_calls(explorer.index, view.call_filter)
        first = next(calls, None)
    except BadFilter as exc:
        raise HTTPException(400, str(exc)) from exc

    def rows() -> Iterator[dict[str, Any]]:
        if first is not None:
            yield first.as_dict()
            for call in calls:
                yield call.as_dict()

    name = f"requests-{view.day_from}-{view.day_to}"
    return _download(_lines(COLUMNS, rows(), fmt), name, fmt)
