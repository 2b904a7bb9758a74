"""The proxy's own endpoints: service information, health and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from redis.exceptions import RedisError

from proxy.metrics import CONTENT_TYPE
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


async def _redis_reachable(runtime: Runtime) -> bool:
    try:
        await asyncio.wait_for(runtime.redis.ping(), runtime.settings.redis_timeout_s)
    except (RedisError, OSError, TimeoutError):
        return False
    return True


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness (answering at all) plus readiness: is Redis reachable, is the proxy spooling."""
    reachable = await _redis_reachable(_runtime(request))
    return {
        "status": "ok",
        "ready": reachable,
        "redis": {"reachable": reachable},
        "spooling": False,
    }


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(_runtime(request).metrics.render(), media_type=CONTENT_TYPE)
