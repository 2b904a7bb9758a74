"""The proxy's own endpoints: service information, liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from proxy.errors import NotReady
from proxy.metrics import CONTENT_TYPE
from proxy.readiness import readiness
from proxy.runtime import Runtime
from shared import __version__

SERVICE_NAME = "openai-log-proxy"

router = APIRouter()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/")
async def service_info(request: Request) -> dict[str, Any]:
    """Name, version and the proxy's configuration facts (never a secret)."""
    settings = _runtime(request).settings
    return {
        "name": SERVICE_NAME,
        "version": __version__,
        "upstream": settings.upstream_base_url,
        "auth_mode": settings.auth_mode,
        "storage_type": settings.storage_type,
        "redis_stream": settings.redis_stream,
    }


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness: 200 while the process serves, with a view of Redis (never waits long)."""
    state = await readiness(_runtime(request))
    return {
        "status": "ok",
        "ready": state.ready,
        "redis": {"reachable": state.redis_reachable},
        "spooling": False,
    }


@router.get("/ready")
async def ready(request: Request) -> Response:
    """200 when the proxy can publish a record, else 503 (OpenAI-shaped); within the timeout."""
    state = await readiness(_runtime(request))
    checks = {"redis": {"reachable": state.redis_reachable}}
    if state.ready:
        return JSONResponse({"status": "ready", "checks": checks})
    error = NotReady("The proxy cannot publish records right now: Redis does not answer.")
    return Response(
        error.body(), status_code=error.status, media_type="application/json"
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(_runtime(request).metrics.render(), media_type=CONTENT_TYPE)
