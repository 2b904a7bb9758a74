"""The HTML pages: overview (whole, per user, per model), users, models, requests, a record."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from explorer.calls import STATUS_CHOICES, BadFilter, error_types, list_calls
from explorer.costs import record_cost
from explorer.records import answer_messages, find_record, pretty, prompt_messages
from explorer.report import GroupKey
from explorer.web import glance
from explorer.web.auth import COOKIE, session_value
from explorer.web.params import PAGE_ROWS, ViewParams, view_params
from explorer.web.state import Explorer

router = APIRouter()
Params = Annotated[ViewParams, Depends(view_params)]


def _explorer(request: Request) -> Explorer:
    explorer: Explorer = request.app.state.explorer
    return explorer


def _render(request: Request, template: str, **context: Any) -> Response:
    return _explorer(request).templates.TemplateResponse(request, template, context)


def _today() -> date:
    return datetime.now(UTC).date()


def _store(request: Request) -> dict[str, Any]:
    """What the empty state needs: whether the store holds any log file, and where it is."""
    index = _explorer(request).index
    return {"no_files": not index.listing(), "location": index.store.location}


def _overview(request: Request, view: ViewParams, title: str) -> Response:
    explorer = _explorer(request)
    figures = glance.overview(explorer.index, explorer.prices, view, _today())
    return _render(request, "overview.html", title=title, view=view, **figures, **_store(request))


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, view: Params) -> Response:
    return _overview(request, view, "Overview")


@router.get("/users/{user_id:path}", response_class=HTMLResponse)
def user_page(request: Request, user_id: str, view: Params) -> Response:
    return _overview(request, replace(view, user=user_id, by="model"), f"User {user_id}")


@router.get("/models/{model:path}", response_class=HTMLResponse)
def model_page(request: Request, model: str, view: Params) -> Response:
    return _overview(request, replace(view, model=model, by="user"), f"Model {model}")


def _groups(request: Request, view: ViewParams, key: GroupKey, title: str) -> Response:
    explorer = _explorer(request)
    return _render(
        request,
        "groups.html",
        title=title,
        view=view,
        key=key,
        ranges=glance.range_links(view, _today()),
        **glance.group_table(explorer.index, explorer.prices, view, key),
        **_store(request),
    )


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, view: Params) -> Response:
    return _groups(request, view, "user", "Users")


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, view: Params) -> Response:
    return _groups(request, view, "model", "Models")


@router.get("/requests", response_class=HTMLResponse)
def requests(request: Request, view: Params) -> Response:
    index = _explorer(request).index
    try:
        rows, more = list_calls(
            index, view.call_filter, PAGE_ROWS, offset=(view.page - 1) * PAGE_ROWS
        )
    except BadFilter as exc:
        raise HTTPException(400, str(exc)) from exc
    return _render(
        request,
        "requests.html",
        title="Requests",
        view=view,
        rows=rows,
        more=more,
        statuses=STATUS_CHOICES,
        error_types=error_types(index, view.selection),
    )


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record_page(request: Request, record_id: str) -> Response:
    explorer = _explorer(request)
    record = find_record(explorer.index, record_id)
    if record is None:
        raise HTTPException(404, f"no record with id {record_id}")
    cost = record_cost(explorer.index, record_id, explorer.prices)
    response = record.get("response") or {}
    return _render(
        request,
        "record.html",
        title=f"Record {record_id}",
        record=record,
        cost=cost,
        prompt=prompt_messages(record),
        answer=answer_messages(record),
        error=record.get("error"),
        upstream_error=(response.get("body") or {}).get("error")
        if isinstance(response.get("body"), dict)
        else None,
        request_json=pretty(record.get("request")),
        response_json=pretty(response),
        pretty=pretty,
    )


def _safe_next(target: str) -> str:
    # Only a path on this site: never //host or a scheme.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return _render(request, "login.html", title="Log in", next=_safe_next(next), failed=False)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/"
) -> Response:
    expected = _explorer(request).settings.token
    if expected is None or session_value(token) != session_value(expected):
        response = _render(
            request, "login.html", title="Log in", next=_safe_next(next), failed=True
        )
        response.status_code = 401
        return response
    redirect = RedirectResponse(_safe_next(next), status_code=303)
    redirect.set_cookie(COOKIE, session_value(expected), httponly=True, samesite="strict", path="/")
    return redirect
