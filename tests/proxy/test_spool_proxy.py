"""The real proxy (``python -m proxy``) through Redis outages: spool, health, 503, SIGTERM."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import openai
import pytest

from shared.spool_format import read_records, segment_paths
from tests.proxy.conftest import CLIENT_KEY, RunningProxy, StartProxy
from tests.proxy.conftest import read_records as read_records_from_stream
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until


def _client(proxy: RunningProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)


def _call(client: openai.OpenAI) -> str:
    """One chat completion through the SDK; the record id the proxy answered with."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "Hello world!"
    return raw.headers["x-proxy-record-id"]


def _spooled_ids(folder: Path) -> list[str]:
    return [json.loads(line)["id"] for p in segment_paths(folder) for line in read_records(p)]


def test_an_outage_is_spooled_shown_in_health_and_drained_when_redis_returns(
    start_proxy: StartProxy, redis_server: RedisServer
) -> None:
    proxy = start_proxy(SPOOL_DRAIN_INTERVAL_S="0.1")
    client = _client(proxy)
    redis_server.stop()

    started = time.monotonic()
    ids = [_call(client) for _ in range(8)]
    assert time.monotonic() - started < 4  # no call waited on Redis

    proxy.wait_for_metric("proxy_records_spooled_total", 8)
    health = httpx.get(f"{proxy.url}/health").json()
    assert health["spooling"] is True and health["redis"]["reachable"] is False
    assert health["spool"]["records"] == 8 and health["spool"]["bytes"] > 0
    assert httpx.get(f"{proxy.url}/ready").status_code == 200  # it can still spool
    assert proxy.metric("proxy_spooling") == 1

    redis_server.start()
    entries = read_records_from_stream(redis_server.url, 8)
    assert [entry.record.id for entry in entries] == ids
    proxy.wait_for_metric("proxy_records_drained_total", 8)
    assert httpx.get(f"{proxy.url}/health").json()["spooling"] is False
    assert proxy.metric("proxy_records_dropped_total") == 0
    after = _call(client)  # straight to Redis again
    assert read_records_from_stream(redis_server.url, 9)[-1].record.id == after


@pytest.mark.slow
def test_reject_policy_answers_503_when_the_spool_is_full(
    start_proxy: StartProxy, redis_server: RedisServer
) -> None:
    # A record is ~1.7 KB; each call sets RECORD_MAX_BYTES aside while it runs.
    proxy = start_proxy(
        SPOOL_MAX_BYTES="100000", RECORD_MAX_BYTES="65536", SPOOL_FULL_POLICY="reject"
    )
    client = _client(proxy)
    redis_server.stop()

    refused, answered = None, 0
    while refused is None and answered < 100:
        try:
            _call(client)
        except openai.APIStatusError as exc:
            refused = exc
        else:
            answered += 1
            proxy.wait_for_metric("proxy_records_spooled_total", answered)

    assert refused is not None and refused.status_code == 503
    assert refused.response.json()["error"]["code"] == "logging_unavailable"
    assert set(refused.response.json()["error"]) == {"message", "type", "code"}
    assert httpx.get(f"{proxy.url}/ready").status_code == 503
    assert proxy.metric("proxy_records_dropped_total") == 0


@pytest.mark.slow
def test_sigterm_with_redis_hung_spools_the_queue_and_a_restart_drains_it(
    start_proxy: StartProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "shared-spool"
    proxy = start_proxy(SPOOL_DIR=str(spool_dir), PUBLISH_TIMEOUT_S="0.5")
    client = _client(proxy)
    _call(client)  # Redis connections in the pool, as after normal traffic
    redis_server.pause()
    try:
        ids = [_call(client) for _ in range(5)]
        assert httpx.get(f"{proxy.url}/ready", timeout=3).status_code == 200
        proxy.stop()  # SIGTERM
        assert "proxy_stopped" in proxy.log()  # a clean shutdown, not a kill
        assert set(ids) <= set(_spooled_ids(spool_dir))
    finally:
        redis_server.resume()

    start_proxy(SPOOL_DIR=str(spool_dir), SPOOL_DRAIN_INTERVAL_S="0.1")
    wait_until(lambda: not segment_paths(spool_dir), 10, "the restarted proxy to drain the spool")
    stream_ids = [entry.record.id for entry in read_records_from_stream(redis_server.url, 6)]
    assert set(ids) <= set(stream_ids)


def test_ready_is_503_only_while_neither_redis_nor_the_spool_can_take_a_record(
    start_proxy: StartProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    blocked = tmp_path / "spool-on-a-lost-disk"
    blocked.write_text("a file where the folder should be")  # root ignores chmod
    proxy = start_proxy(SPOOL_DIR=str(blocked), SPOOL_DRAIN_INTERVAL_S="0.1")
    assert httpx.get(f"{proxy.url}/ready").status_code == 200  # Redis answers
    redis_server.stop()

    assert httpx.get(f"{proxy.url}/ready").status_code == 503
    assert httpx.get(f"{proxy.url}/health").json()["spool"]["writable"] is False
    blocked.unlink()
    wait_until(lambda: httpx.get(f"{proxy.url}/ready").status_code == 200, 10,
               "the spool's recovery to be noticed", interval_s=0.1)
