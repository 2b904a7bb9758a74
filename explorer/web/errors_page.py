"""The errors view: failed calls by model, status and type, each linking to its requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from explorer.errors import ErrorGroup, error_groups
from explorer.web.params import ViewParams, view_params
from explorer.web.state import Explorer

router = APIRouter()
Params = Annotated[ViewParams, Depends(view_params)]


def requests_query(view: ViewParams, group: ErrorGroup) -> str:
    """The request list's query string showing exactly the calls of ``group``.

    Calls without a model cannot be asked for by model; their link shows the same
    status and type across models.
    """
    return view.query(
        model=group.model,
        status=str(group.status) if group.status is not None else "error",
        error_type=group.error_type or "",
        text="",
        page=1,
    )


@router.get("/errors", response_class=HTMLResponse)
def errors(request: Request, view: Params) -> Response:
    explorer: Explorer = request.app.state.explorer
    groups = error_groups(explorer.index, view.selection)
    return explorer.templates.TemplateResponse(
        request,
        "errors.html",
        {
            "title": "Errors",
            "view": view,
            "groups": groups,
            "links": [requests_query(view, group) for group in groups],
            "total": sum(group.calls for group in groups),
        },
    )
