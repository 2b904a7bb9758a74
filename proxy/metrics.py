"""The proxy's Prometheus metrics, in a registry of their own (one per app)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

_LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """Counters end in ``_total``; names carry their unit."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "proxy_requests_total",
            "Requests to /v1 answered, by method and status code.",
            ["method", "status"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "proxy_upstream_latency_seconds",
            "Time from sending a request upstream to receiving its response headers.",
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.records_published = Counter(
            "proxy_records_published_total",
            "Records written to the Redis stream.",
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "proxy_record_publish_failures_total",
            "Records whose XADD failed (handed to the fallback).",
            registry=self.registry,
        )
        self.records_dropped = Counter(
            "proxy_records_dropped_total",
            "Records neither published nor spooled.",
            registry=self.registry,
        )
        self.inflight_streams = Gauge(
            "proxy_inflight_streams",
            "Responses being relayed to clients right now.",
            registry=self.registry,
        )

    def totals(self) -> dict[str, int]:
        """The record counters, for the log line at shutdown."""
        names = (
            "proxy_records_published_total",
            "proxy_record_publish_failures_total",
            "proxy_records_dropped_total",
        )
        return {name: int(self.registry.get_sample_value(name) or 0) for name in names}

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
