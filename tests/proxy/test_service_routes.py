"""``/``, ``/health`` and ``/metrics`` of the real proxy."""

from __future__ import annotations

import httpx

from tests.proxy.conftest import UPSTREAM_KEY, RunningProxy, read_records
from tests.support.fake_upstream import FakeUpstream


def test_service_information(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    info = httpx.get(f"{proxy.url}/").json()

    assert info["name"] == "openai-log-proxy"
    assert info["version"]
    assert info["upstream"] == fake_upstream.base_url
    assert info["auth_mode"] == "none"
    assert info["storage_type"] == "local"
    assert UPSTREAM_KEY not in str(info)


def test_health_reports_redis_reachable(proxy: RunningProxy) -> None:
    health = httpx.get(f"{proxy.url}/health")

    assert health.status_code == 200
    assert health.json()["redis"]["reachable"] is True
    assert health.json()["spooling"] is False


def test_metrics_count_requests_and_published_records(
    proxy: RunningProxy, redis_url: str
) -> None:
    httpx.get(f"{proxy.base_url}/models")
    httpx.post(f"{proxy.base_url}/chat/completions", json={"model": "error-500"})
    read_records(redis_url, 2)
    proxy.wait_for_metric("proxy_records_published_total", 2)

    text = httpx.get(f"{proxy.url}/metrics").text

    assert (
        'proxy_requests_total{method="GET",model="none",status="200",status_class="2xx"} 1.0'
        in text
    )
    assert (
        'proxy_requests_total{method="POST",model="error-500",status="500",status_class="5xx"}'
        " 1.0" in text
    )
    assert "proxy_upstream_ttfb_seconds_count 2.0" in text
    assert "proxy_upstream_latency_seconds_count 2.0" in text
    assert proxy.metric("proxy_inflight_streams") == 0
