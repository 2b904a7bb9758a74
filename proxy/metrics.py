"""The proxy's Prometheus metrics: every definition in this one place.

Each app has a registry of its own. With several worker processes (``PROXY_WORKERS``)
prometheus-client's multiprocess mode is on (``proxy.serving`` sets it up before any
worker starts): every process writes its values to files in one folder, and
``render`` adds them up, so ``/metrics`` is the same whichever worker answers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE", "MAX_MODEL_LABELS", "Metrics", "status_class"]

_LATENCY_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
)
MAX_MODEL_LABELS = 200
"""Distinct ``model`` label values per process; later ones count as ``other``."""
_CACHED_REQUEST_COUNTERS = 4 * MAX_MODEL_LABELS
_MODEL_LABEL = re.compile(r"[A-Za-z0-9._:/@-]{1,100}")


class _ProcessId:
    """``os.getpid()`` read once per process, and again in a forked child."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._pid = os.getpid()

    def __call__(self) -> int:
        return self._pid


def read_process_id_once() -> None:
    """In multiprocess mode, prometheus-client asks ``os.getpid()`` on every update of a
    metric, to notice a fork: a system call each (glibc no longer caches it), seven per
    forwarded call. Call before any metric is made: they then ask a cached id, which a
    fork renews as the check expects (``MultiProcessValue``'s documented argument)."""
    if getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue(_ProcessId())  # type: ignore[no-untyped-call]


def status_class(status: int) -> str:
    """``2xx``, ``4xx``, ... for a status code."""
    return f"{status // 100}xx"


class Metrics:
    """Counters end in ``_total``; names carry their unit."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        self._multiprocess_dir = multiprocess_dir
        self._models: set[str] = set()
        # The labelled counter of each (method, status, model) seen: ``labels()`` costs a
        # lock and four conversions per call. Bounded as the model label is.
        self._request_counters: dict[tuple[str, int, str | None], Counter] = {}
        self.requests = Counter(
            "proxy_requests_total",
            "Requests to /v1 answered, by method, status code, status class and model.",
            ["method", "status", "status_class", "model"],
            registry=self.registry,
        )
        self.upstream_ttfb = Histogram(
            "proxy_upstream_ttfb_seconds",
            "Time from sending a request upstream to receiving its response headers.",
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "proxy_upstream_latency_seconds",
            "Time from sending a request upstream to the end of its response body.",
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.records_published = Counter(
            "proxy_records_published_total",
            "Records written to the Redis stream (and confirmed by REDIS_MIN_REPLICAS replicas).",
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "proxy_record_publish_failures_total",
            "Records the publisher could not publish (failed or ambiguous): spooled.",
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
            multiprocess_mode="livesum",
        )
        self.stream_usage_untouched_events = Counter(
            "proxy_stream_usage_untouched_events_total",
            "Events of a stream whose usage the proxy asked for, relayed as they came because "
            "what the request added could not be removed exactly.",
            registry=self.registry,
        )
        self.stream_usage_untouched_streams = Counter(
            "proxy_stream_usage_untouched_streams_total",
            "Streams whose usage the proxy asked for, relayed as they came because the "
            "upstream compressed them.",
            registry=self.registry,
        )
        self._add_spool_metrics()

    def _add_spool_metrics(self) -> None:
        # The spool's view (proxy/publish/spool.py): what waits on this proxy's disk. With
        # several workers, each sees the whole shared folder (max) but only its own records (sum).
        self.records_spooled = Counter(
            "proxy_records_spooled_total",
            "Records written (fsynced) to the spool because Redis failed or did not answer.",
            registry=self.registry,
        )
        self.records_ambiguous = Counter(
            "proxy_records_ambiguous_total",
            "Records that may have landed: no answer, connection lost, or too few replicas "
            "confirmed; sent again under the same id.",
            registry=self.registry,
        )
        self.records_drained = Counter(
            "proxy_records_drained_total",
            "Spooled records re-published to the stream.",
            registry=self.registry,
        )
        self.spooling = Gauge(
            "proxy_spooling",
            "1 while this proxy sends new records to the spool instead of Redis.",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.spool_records = Gauge(
            "proxy_spool_records",
            "Records this proxy spooled that are not yet re-published.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.spool_bytes = Gauge(
            "proxy_spool_bytes",
            "Bytes of the segments in SPOOL_DIR (this proxy's and adopted ones).",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.spool_segments = Gauge(
            "proxy_spool_segments",
            "Segment files in SPOOL_DIR, from this proxy and from others.",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.spool_full = Gauge(
            "proxy_spool_full",
            "1 while the spool is at SPOOL_MAX_BYTES (records are lost, or calls refused).",
            multiprocess_mode="livemax",
            registry=self.registry,
        )

    def count_request(self, method: str, status: int, model: str | None) -> None:
        """One answered request; the model label is bounded so clients cannot blow it up."""
        key = (method, status, model)
        counter = self._request_counters.get(key)
        if counter is None:
            labels = (method, str(status), status_class(status), self._model_label(model))
            counter = self.requests.labels(*labels)
            if len(self._request_counters) < _CACHED_REQUEST_COUNTERS:
                self._request_counters[key] = counter
        counter.inc()

    def _model_label(self, model: str | None) -> str:
        if model is None:
            return "none"
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS or not _MODEL_LABEL.fullmatch(model):
            return "other"
        self._models.add(model)
        return model

    def totals(self) -> dict[str, int]:
        """This process's record counters, for the log line at shutdown."""
        names = (
            "proxy_records_published_total",
            "proxy_record_publish_failures_total",
            "proxy_records_dropped_total",
            "proxy_records_spooled_total",
            "proxy_records_ambiguous_total",
            "proxy_records_drained_total",
        )
        return {name: int(self.registry.get_sample_value(name) or 0) for name in names}

    def render(self) -> bytes:
        """The Prometheus text exposition: of all worker processes when there are several."""
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(combined)
