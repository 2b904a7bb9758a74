"""The shipper's metrics and health port (``SHIPPER_METRICS_PORT``, default 9101).

- ``GET /metrics``: Prometheus text. Counters are the worker's ``Totals``, read at each
  scrape (the worker counts once, there); the
  backlog figures (stream length, pending entries, age of the oldest unshipped record,
  dead letters) are read from Redis at each scrape, as ``shipper status`` reads them.
- ``GET /health``: liveness, 200 while the process serves, with the failure clocks.
- ``GET /ready``: 503 once storage (or Redis) has been failing for longer than
  ``SHIPPER_READY_FAILING_S``, so an orchestrator can tell a stuck shipper from a busy one;
  200 otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from shared.logs import log_event
from shipper.settings import ShipperSettings
from shipper.source import SourceUnavailable
from shipper.status import Backlog, read_backlog
from shipper.totals import Totals

logger = logging.getLogger(__name__)

_BATCH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BACKLOG_TIMEOUT_S = 2.0


class _TotalsCollector(Collector):
    """The worker's counters as Prometheus counters, read when scraped."""

    def __init__(self, totals: Totals) -> None:
        self._totals = totals

    def collect(self) -> Iterator[CounterMetricFamily]:
        totals = self._totals
        for name, documentation, value in (
            ("shipper_records_shipped", "Records written durably to storage.",
             totals.records_shipped_total),
            ("shipper_bytes_shipped", "Bytes of JSONL appended to storage.",
             totals.bytes_shipped_total),
            ("shipper_dead_letters", "Entries this process moved to the dead-letter stream.",
             totals.entries_dead_lettered_total),
            ("shipper_redis_errors", "Times Redis could not be reached (waited out).",
             totals.redis_errors_total),
        ):
            yield CounterMetricFamily(name, documentation, value=value)


class ShipperTelemetry:
    """What the worker reports as it runs: its ``totals``, and since when something fails."""

    def __init__(self, totals: Totals) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_TotalsCollector(totals))
        self.batch_duration = Histogram(
            "shipper_batch_duration_seconds",
            "From starting a batch's appends to its entries acknowledged.",
            buckets=_BATCH_BUCKETS_S, registry=self.registry)
        self.storage_retries = Counter(
            "shipper_storage_retries_total", "Storage operations that failed and are retried.",
            ["kind"], registry=self.registry)
        self.backlog = Gauge(
            "shipper_stream_backlog_entries", "Entries in the stream, i.e. not yet shipped.",
            registry=self.registry)
        self.pending = Gauge(
            "shipper_pending_entries", "Entries read by a shipper and not yet acknowledged.",
            registry=self.registry)
        self.oldest_age = Gauge(
            "shipper_oldest_unshipped_age_seconds",
            "Age of the oldest record still in the stream (0 when it is empty).",
            registry=self.registry)
        self.dead_letter_entries = Gauge(
            "shipper_dead_letter_entries", "Entries in the dead-letter stream.",
            registry=self.registry)
        self.redis_up = Gauge(
            "shipper_redis_up", "1 when the last backlog read reached Redis.",
            registry=self.registry)
        self.storage_failing_seconds = Gauge(
            "shipper_storage_failing_seconds",
            "How long storage has been failing without a success (0 when it works).",
            registry=self.registry)
        self.storage_failing_since: float | None = None
        self.redis_failing_since: float | None = None

    def storage_failed(self, exc: BaseException) -> None:
        """A retried storage error; its kind is the sink's, else the underlying error's class."""
        kind = getattr(exc, "kind", None) or type(exc.__cause__ or exc).__name__
        self.storage_retries.labels(str(kind)).inc()
        if self.storage_failing_since is None:
            self.storage_failing_since = time.monotonic()

    def storage_ok(self) -> None:
        self.storage_failing_since = None

    def redis_failed(self) -> None:
        if self.redis_failing_since is None:
            self.redis_failing_since = time.monotonic()

    def round_ok(self) -> None:
        """A loop round read from Redis and wrote what it read."""
        self.redis_failing_since = None
        self.storage_failing_since = None

    def failing_s(self) -> tuple[float, float]:
        """Seconds storage and Redis have each been failing (0 when working)."""
        now = time.monotonic()
        storage = now - self.storage_failing_since if self.storage_failing_since else 0.0
        redis = now - self.redis_failing_since if self.redis_failing_since else 0.0
        return storage, redis

    def show_backlog(self, backlog: Backlog | None) -> None:
        self.redis_up.set(0 if backlog is None else 1)
        if backlog is not None:
            self.backlog.set(backlog.stream_length)
            self.pending.set(backlog.pending_total)
            self.oldest_age.set(backlog.oldest_unshipped_age_s or 0)
            self.dead_letter_entries.set(backlog.dead_letter_count)
        self.storage_failing_seconds.set(self.failing_s()[0])


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    storage_failing_s: float
    redis_failing_s: float

    def body(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "unready",
                "storage_failing_s": round(self.storage_failing_s, 1),
                "redis_failing_s": round(self.redis_failing_s, 1)}


class TelemetryServer:
    """The HTTP side: started before the worker runs, stopped after it finished."""

    def __init__(self, settings: ShipperSettings, telemetry: ShipperTelemetry) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._runner: web.AppRunner | None = None

    def readiness(self) -> Readiness:
        storage_s, redis_s = self._telemetry.failing_s()
        limit_s = self._settings.shipper_ready_failing_s
        return Readiness(storage_s <= limit_s and redis_s <= limit_s, storage_s, redis_s)

    async def start(self) -> None:
        """Listen, unless the port is 0; a port in use is logged, and shipping goes on."""
        port = self._settings.shipper_metrics_port
        if port == 0:
            return
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        app.router.add_get("/ready", self._ready)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        host = self._settings.shipper_metrics_host
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as exc:
            await self.stop()
            log_event(logger, "telemetry_unavailable", logging.WARNING, host=host, port=port,
                      error=str(exc))
            return
        log_event(logger, "telemetry_listening", host=host, port=port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        try:
            backlog: Backlog | None = await asyncio.wait_for(
                read_backlog(self._settings), _BACKLOG_TIMEOUT_S)
        except (SourceUnavailable, TimeoutError):
            backlog = None
        self._telemetry.show_backlog(backlog)
        return web.Response(body=generate_latest(self._telemetry.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, _request: web.Request) -> web.Response:
        # Liveness in its own words: a live shipper whose storage fails is alive, not ready.
        storage_s, redis_s = self._telemetry.failing_s()
        return web.json_response({"status": "alive", "storage_failing_s": round(storage_s, 1),
                                  "redis_failing_s": round(redis_s, 1)})

    async def _ready(self, _request: web.Request) -> web.Response:
        readiness = self.readiness()
        return web.json_response(readiness.body(), status=200 if readiness.ready else 503)
