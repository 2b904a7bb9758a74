"""The proxy's FastAPI app: the factory, and the lifespan that owns shared resources.

Start-up creates the one ``Upstream``, the Redis client and the publishing
pipeline (publisher, spool, drainer). Shutdown (after uvicorn stopped taking requests
and let in-flight ones finish): publish or spool every queued record within its time
limit, close the clients, log totals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.routing import Route, WebSocketRoute

from proxy import log_thread
from proxy.auth import Authenticator
from proxy.forward import ForwardEndpoint
from proxy.keys.cache import key_store_for
from proxy.metrics import Metrics
from proxy.publish.pipeline import build_publishing
from proxy.realtime.endpoint import RealtimeEndpoint
from proxy.redaction import SecretScrubber
from proxy.refusals import refuse_route
from proxy.runtime import Runtime
from proxy.service_routes import router
from proxy.settings import ProxySettings
from proxy.upstream import Upstream
from shared import __version__, heap
from shared.logs import log_event
from shared.redis_client import connect

logger = logging.getLogger("proxy")

FORWARDED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _runtime(settings: ProxySettings) -> Runtime:
    upstream_key = (
        settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    )
    metrics = Metrics(settings.prometheus_multiproc_dir)
    redis = connect(settings, timeout_s=settings.proxy_redis_timeout_s)
    publishing = build_publishing(settings, metrics)
    static_keys = [key for key, _ in settings.static_key_pairs]
    key_store, key_cache = key_store_for(settings, redis)
    passthrough_secret = settings.passthrough_user_id_secret
    return Runtime(
        settings=settings,
        upstream=Upstream(settings),
        redis=redis,
        metrics=metrics,
        authenticator=Authenticator(
            settings.auth_mode,
            upstream_key,
            key_store,
            passthrough_secret=(
                passthrough_secret.get_secret_value().encode() if passthrough_secret else None
            ),
        ),
        scrubber=SecretScrubber(
            [
                *static_keys,
                *([upstream_key] if upstream_key else []),
                *settings.upstream_base.secrets,
            ]
        ),
        publishing=publishing,
        key_cache=key_cache,
    )


def create_app(settings: ProxySettings) -> FastAPI:
    """The proxy as an ASGI app; its resources exist while its lifespan runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = _runtime(settings)
        await runtime.publishing.start()
        if runtime.key_cache is not None:
            await runtime.key_cache.start(settings.proxy_redis_timeout_s)
        app.state.runtime = runtime
        log_event(
            logger,
            "proxy_started",
            version=__version__,
            upstream=settings.upstream_base_url,
            auth_mode=settings.auth_mode,
            stream=settings.redis_stream,
        )
        for event, message in settings.startup_warnings():
            log_event(logger, event, logging.WARNING, message=message)
        # A full collection no longer walks the hundreds of thousands of objects of the
        # imported libraries (a pause of tens of milliseconds in the tail latency).
        heap.settle()
        try:
            yield
        finally:
            if runtime.key_cache is not None:
                await runtime.key_cache.stop(settings.proxy_redis_timeout_s)
            await runtime.publishing.stop(settings.shutdown_drain_timeout_s)
            await runtime.upstream.aclose()
            await runtime.redis.aclose()
            log_event(logger, "proxy_stopped", **runtime.metrics.totals())
            log_thread.stop()

    # No slash redirects: a bare /v1 is a 404 like any other unknown URL, not a 307.
    app = FastAPI(
        title="OpenAI logging proxy",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
        # FastAPI's built-in OpenTelemetry hooks look up the tracer provider on every
        # request even when none is configured; the proxy exports Prometheus metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_exception_handler(HTTPException, refuse_route)
    # SPOOL_FULL_POLICY=reject and the Date header wrap every request once, outside this
    # app (``proxy.dispatch.Dispatch``), so the hot path and FastAPI's share them.
    app.include_router(router)
    app.router.routes.append(WebSocketRoute("/v1/realtime", RealtimeEndpoint()))
    app.router.routes.append(
        Route("/v1/{path:path}", ForwardEndpoint(), methods=FORWARDED_METHODS)
    )
    return app
