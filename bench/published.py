"""Whether a proxy under the benchmark published its records, each confirmed by ``WAIT``.

The ``REDIS_MIN_REPLICAS=1`` row prices the ``WAIT`` round trip only if every record
went into the stream and a replica confirmed it. A replica that is missing or lagging
makes each batch wait ``REDIS_WAIT_TIMEOUT_MS`` and then spool: the row would then
price the spool, so the suite fails instead. The figures come from the proxy's own
``/metrics`` (``proxy_requests_total`` counts the records it was handed) and from the
primary's ``INFO commandstats``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

_SETTLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Publishing:
    """What became of the records of one proxy process's run."""

    records: int
    """Records the proxy was handed: one per ``/v1`` exchange."""
    published: int
    """Published in their first round trip, confirmed by ``REDIS_MIN_REPLICAS`` replicas."""
    failed: int
    """Not published in their first round trip (failed, or ambiguous: too few replicas
    confirmed); while Redis is failing, the proxy spools the next records directly."""
    spooled: int
    dropped: int
    wait_calls: int
    """``WAIT`` commands the primary served (the publisher's and the drainer's)."""
    replicas_online: int


def _counters(metrics_url: str) -> dict[str, int]:
    """The proxy's counters, each summed over its labels."""
    totals: dict[str, int] = {}
    text = httpx.get(metrics_url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0) + int(sample.value)
    return totals


def publishing(metrics_url: str, redis_url: str) -> Publishing:
    """The proxy's record counters once its publisher has caught up with its requests."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT_S
    while True:
        counters = _counters(metrics_url)
        records = counters.get("proxy_requests_total", 0)
        settled = sum(counters.get(name, 0) for name in (
            "proxy_records_published_total", "proxy_records_spooled_total",
            "proxy_records_dropped_total"))
        if settled >= records or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    with redis.Redis.from_url(redis_url) as client:
        stats = client.info("commandstats")
        replication = client.info("replication")
    return Publishing(
        records=records,
        published=counters.get("proxy_records_published_total", 0),
        failed=counters.get("proxy_record_publish_failures_total", 0),
        spooled=counters.get("proxy_records_spooled_total", 0),
        dropped=counters.get("proxy_records_dropped_total", 0),
        wait_calls=int(stats.get("cmdstat_wait", {}).get("calls", 0)),
        replicas_online=sum(1 for key, value in replication.items()
                            if key.startswith("slave") and isinstance(value, dict)
                            and value.get("state") == "online"),
    )


def check_confirmed(result: Publishing, answered: int) -> None:
    """Raise unless every record was published and confirmed, none spooled.

    ``answered``: the requests the load generator counted; the proxy handled at least
    those (plus warm-up calls and calls cut off at the end of a run).
    """
    problems = []
    if result.records < answered:
        problems.append(f"the proxy counted {result.records} records, wrk {answered} calls")
    if result.published < result.records:
        problems.append(f"{result.published} of {result.records} records published")
    if result.failed or result.spooled or result.dropped:
        problems.append(f"{result.failed} not published, {result.spooled} spooled, "
                        f"{result.dropped} dropped")
    if not result.wait_calls:
        problems.append("the primary served no WAIT")
    if not result.replicas_online:
        problems.append("no replica online at the end")
    if problems:
        raise RuntimeError("REDIS_MIN_REPLICAS=1 row is not a measure of WAIT: "
                           + "; ".join(problems))
