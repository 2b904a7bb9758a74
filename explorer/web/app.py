"""The web UI's application: settings, index and prices built once, pages and exports mounted."""

from __future__ import annotations

import logging
from pathlib import Path

import jinja2
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from explorer.cache import SummaryCache
from explorer.index import Index
from explorer.prices import PriceTable
from explorer.settings import ExplorerSettings
from explorer.store import StoreError, open_store
from explorer.web import errors_page, exports, numbers, pages, reconcile_page
from explorer.web.auth import TokenAuth
from explorer.web.headers import SecurityHeaders
from explorer.web.state import Explorer
from shared.logs import log_event

HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)


def _templates() -> Jinja2Templates:
    # Autoescape on every template: prompts and answers are untrusted text.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["usd"] = numbers.usd
    environment.filters["cost"] = numbers.cost
    environment.filters["ms"] = numbers.ms
    environment.filters["count"] = numbers.count
    environment.filters["day"] = numbers.day
    environment.filters["moment"] = numbers.moment
    environment.filters["number"] = lambda value: f"{value:,.4f}".rstrip("0").rstrip(".")
    return Jinja2Templates(env=environment)


def create_app(settings: ExplorerSettings) -> FastAPI:
    """The ASGI app for ``settings`` (the index starts empty and fills on first query)."""
    store = open_store(settings)
    index = Index(
        store,
        SummaryCache(settings.explorer_cache_dir, store.location),
        scan_batch_bytes=settings.explorer_scan_batch_bytes,
        refresh_s=settings.explorer_refresh_s,
    )
    app = FastAPI(title="explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.explorer = Explorer(
        settings, index, PriceTable.load(settings.explorer_prices), _templates()
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(exports.router)
    app.include_router(reconcile_page.router)
    app.include_router(errors_page.router)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        explorer: Explorer = request.app.state.explorer
        return explorer.templates.TemplateResponse(
            request,
            "error.html",
            {"title": f"Error {exc.status_code}", "message": exc.detail},
            status_code=exc.status_code,
        )

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> Response:
        log_event(logger, "store_read_failed", logging.ERROR, error=str(exc))
        explorer: Explorer = request.app.state.explorer
        return explorer.templates.TemplateResponse(
            request,
            "error.html",
            {"title": "Log store unavailable", "message": "The log store could not be read."},
            status_code=503,
        )

    app.add_middleware(TokenAuth, token=settings.token)
    app.add_middleware(SecurityHeaders)
    return app
