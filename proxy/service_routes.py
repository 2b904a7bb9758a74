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
    """Liveness: 200 while the process serves, with a view of Redis and the spool.

    Whether it can take calls is ``/ready``'s answer, not this one's.
    """
    runtime = _runtime(request)
    state = await readiness(runtime)
    spool = runtime.publishing.spool
    return {
        "status": "alive",
        "redis": {"reachable": state.redis_reachable},
        "spooling": spool.holds_records,
        "spool": spool.describe(),
    }


@router.get("/ready")
async def ready(request: Request) -> Response:
    """200 when the proxy can publish or spool a record, else 503 (OpenAI-shaped), in time."""
    runtime = _runtime(request)
    state = await readiness(runtime)
    checks = {
        "redis": {"reachable": state.redis_reachable},
        "spool": {
            "accepts": state.spool_accepts,
            "spooling": runtime.publishing.spool.holds_records,
        },
    }
    if state.ready:
        return JSONResponse({"status": "ready", "checks": checks})
    reason = (
        "calls are refused while the spool has no room for their records "
        "(SPOOL_FULL_POLICY=reject)"
        if state.refusing
        else "Redis does not answer and the spool cannot take records"
    )
    error = NotReady(f"The proxy cannot keep records right now: {reason}.")
    return Response(
        error.body(), status_code=error.status, media_type="application/json"
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(_runtime(request).metrics.render(), media_type=CONTENT_TYPE)
