"""The HTML pages: overview (whole, per user, per model), users, models, requests, a record."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from explorer.calls import STATUS_CHOICES, BadFilter, error_types, list_calls
from explorer.costs import record_cost
from explorer.records import answer_messages, find_record, pretty, prompt_messages
from explorer.report import GroupKey, normal_grouping, report, reports
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


def _overview(request: Request, view: ViewParams, title: str) -> Response:
    explorer = _explorer(request)
    key: GroupKey = view.by
    per_day, per_day_group, groups, total = (
        normal_grouping(keys) for keys in (("day",), ("day", key), (key,), ())
    )
    found = reports(
        explorer.index, view.selection, [per_day, per_day_group, groups, total], explorer.prices
    )
    return _render(
        request,
        "overview.html",
        title=title,
        view=view,
        total=found[total][0] if found[total] else None,
        per_day=found[per_day],
        per_day_group=found[per_day_group],
        groups=sorted(found[groups], key=lambda row: row.calls, reverse=True),
        max_calls=max((row.calls for row in found[per_day]), default=0),
    )


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, view: Params) -> Response:
    return _overview(request, view, "Overview")


@router.get("/users/{user_id:path}", response_class=HTMLResponse)
def user_page(request: Request, user_id: str, view: Params) -> Response:
    return _overview(request, replace(view, user=user_id, by="model"), f"User {user_id}")


@router.get("/models/{model:path}", response_class=HTMLResponse)
def model_page(request: Request, model: str, view: Params) -> Response:
    return _overview(request, replace(view, model=model, by="user"), f"Model {model}")


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, view: Params) -> Response:
    rows = report(_explorer(request).index, view.selection, ("user",), _explorer(request).prices)
    return _render(request, "groups.html", title="Users", view=view, key="user", rows=rows)


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, view: Params) -> Response:
    rows = report(_explorer(request).index, view.selection, ("model",), _explorer(request).prices)
    return _render(request, "groups.html", title="Models", view=view, key="model", rows=rows)


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
