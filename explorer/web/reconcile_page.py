"""The reconcile page: the files against OpenAI's Usage and Costs APIs for the chosen days."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from explorer.reconcile.cli import admin_api
from explorer.reconcile.compare import reconcile
from explorer.reconcile.usage_api import AdminKeyError
from explorer.web.params import ViewParams, view_params
from explorer.web.state import Explorer

router = APIRouter()


@router.get("/reconcile", response_class=HTMLResponse)
def reconcile_page(request: Request, view: Annotated[ViewParams, Depends(view_params)]) -> Response:
    """Runs the comparison on request: it reads OpenAI's APIs, so it is never cached."""
    explorer: Explorer = request.app.state.explorer
    settings = explorer.settings
    result, problem = None, None
    try:
        result = reconcile(
            explorer.index,
            explorer.prices,
            admin_api(settings),
            view.day_from,
            view.day_to,
            settings.explorer_reconcile_tolerance,
        )
    except AdminKeyError as exc:
        problem = str(exc)
    return explorer.templates.TemplateResponse(
        request,
        "reconcile.html",
        {"title": "Reconcile", "view": view, "result": result, "problem": problem},
    )
