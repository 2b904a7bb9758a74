"""Streams through the real proxy: chunks arrive as sent, disconnects close the upstream."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from tests.proxy.conftest import RunningProxy, StartProxy, read_records
from tests.support.fake_upstream import FakeUpstream

CHAT = {"messages": [{"role": "user", "content": "Say hello"}], "stream": True}


@pytest.mark.slow
def test_each_chunk_reaches_the_client_as_it_is_sent(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.chunk_delay_s = 0.2
    arrivals: list[float] = []

    with httpx.stream(
        "POST", f"{proxy.base_url}/chat/completions", json={**CHAT, "model": "gpt-4o-mini"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())

    assert len(arrivals) >= 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert all(0.1 < gap < 0.45 for gap in gaps), gaps
    assert arrivals[-1] - arrivals[0] > 0.2 * (len(arrivals) - 1) * 0.8


def test_client_disconnect_closes_the_upstream_and_publishes_the_partial_record(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    fake_upstream.chunk_delay_s = 0.05
    received: list[str] = []

    with httpx.stream(
        "POST", f"{proxy.base_url}/chat/completions", json={**CHAT, "model": "long-stream"}
    ) as response:
        record_id = response.headers["x-proxy-record-id"]
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(line)
            if len(received) == 2:
                break
    # Leaving the block closed the connection mid-stream.

    fake_upstream.wait_for(lambda: fake_upstream.disconnects == 1, timeout_s=5)
    [entry] = read_records(redis_url, 1)
    record = entry.record
    assert record.id == record_id
    assert record.error is not None and record.error.type == "client_disconnected"
    assert record.response is not None and record.response.streaming is True
    assert record.response.status_code == 200
    content = record.response.body["choices"][0]["message"]["content"]
    assert content.startswith("token0 ")  # what had arrived so far...
    assert len(content.split()) < 50  # ...and not the rest
    assert record.response.body["choices"][0].get("finish_reason") is None


@pytest.mark.slow
def test_the_read_timeout_bounds_the_gap_between_chunks_not_the_stream(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    proxy = start_proxy(UPSTREAM_READ_TIMEOUT_S="0.5")
    url = f"{proxy.base_url}/chat/completions"

    # 50 chunks 30 ms apart: the stream outlasts the timeout, no gap does.
    fake_upstream.chunk_delay_s = 0.03
    started = time.monotonic()
    lines = httpx.post(url, json={**CHAT, "model": "long-stream"}, timeout=10).text
    assert time.monotonic() - started > 1.0
    assert lines.rstrip().endswith("data: [DONE]")

    # A gap longer than the timeout: the relay stops and the client sees a cut-off body.
    fake_upstream.chunk_delay_s = 1.5
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", url, json={**CHAT, "model": "gpt-4o-mini"}) as response:
            assert response.status_code == 200
            for _ in response.iter_raw():
                pass

    complete, cut = read_records(redis_url, 2)
    assert complete.record.error is None
    assert complete.record.response is not None
    assert complete.record.response.body["choices"][0]["finish_reason"] == "stop"
    assert cut.record.error is not None and cut.record.error.type == "upstream_timeout"
    assert cut.record.response is not None and cut.record.response.status_code == 200


def test_client_leaving_before_the_upstream_answers_is_noticed_and_recorded(
    proxy: RunningProxy, redis_url: str
) -> None:
    # The disconnect watcher starts only for an exchange still running after
    # ``WATCH_AFTER_S``: one the upstream keeps waiting is still cut short promptly.
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{proxy.base_url}/chat/completions",
            json={"model": "slow", "messages": CHAT["messages"]},
            timeout=httpx.Timeout(10, read=0.5),
        )

    [entry] = read_records(redis_url, 1)
    assert time.monotonic() - started < 3  # not the upstream's 5 s
    record = entry.record
    assert record.error is not None and record.error.type == "client_disconnected"
    assert record.response is None and record.model == "slow"
