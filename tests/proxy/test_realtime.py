"""The Realtime WebSocket through the real proxy, against the fake Realtime upstream.

The client is the ``websockets`` library; each test asserts what the client saw, what
reached the upstream, and what the session's one record holds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from proxy.auth import passthrough_user_id
from tests.proxy.conftest import (
    CLIENT_KEY,
    UPSTREAM_KEY,
    RunningProxy,
    StartProxy,
    record_for,
)
from tests.support.fake_realtime import (
    AUDIO_CHUNKS,
    REFUSAL,
    SERVER_CLOSE_CODE,
    SERVER_CLOSE_REASON,
    USAGE,
    FakeRealtime,
)
from tests.support.ports import free_port

CLIENT_AUDIO = bytes(range(256)) * 12
MODEL = "gpt-realtime"


@pytest.fixture
def fake_realtime() -> Iterator[FakeRealtime]:
    with FakeRealtime() as server:
        yield server


@pytest.fixture
def realtime_proxy(start_proxy: StartProxy, fake_realtime: FakeRealtime) -> RunningProxy:
    return start_proxy(
        OPENAI_BASE_URL=fake_realtime.base_url,
        AUTH_MODE="keys",
        PROXY_API_KEYS=f"{CLIENT_KEY}=alice",
    )


def realtime_url(proxy: RunningProxy, model: str = MODEL) -> str:
    return f"{proxy.url.replace('http://', 'ws://')}/v1/realtime?model={model}"


def summary(data: bytes) -> dict[str, Any]:
    return {"audio": True, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def receive_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    events = []
    while True:
        event = json.loads(await ws.recv())
        events.append(event)
        if event["type"] == kind:
            return events


async def converse(ws: ClientConnection) -> list[dict[str, Any]]:
    """Configure the session, send audio, ask for a response; the server events seen."""
    seen = await receive_until(ws, "session.created")
    await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "Be brief"}}))
    seen += await receive_until(ws, "session.updated")
    audio = base64.b64encode(CLIENT_AUDIO).decode()
    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
    await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    seen += await receive_until(ws, "input_audio_buffer.committed")
    await ws.send(json.dumps({"type": "response.create"}))
    seen += await receive_until(ws, "response.done")
    return seen


@pytest.mark.slow
async def test_a_session_is_relayed_and_recorded_with_audio_hashed(
    realtime_proxy: RunningProxy, fake_realtime: FakeRealtime, redis_url: str
) -> None:
    async with connect(
        realtime_url(realtime_proxy),
        subprotocols=["realtime", f"openai-insecure-api-key.{CLIENT_KEY}"],  # type: ignore[list-item]
        additional_headers={"OpenAI-Beta": "realtime=v1"},
        proxy=None,
    ) as ws:
        assert ws.subprotocol == "realtime"
        assert ws.response is not None
        record_id = ws.response.headers["x-proxy-record-id"]
        seen = await converse(ws)
        await ws.close(1000, "bye")

    deltas = [e for e in seen if e["type"] == "response.output_audio.delta"]
    assert [base64.b64decode(e["delta"]) for e in deltas] == AUDIO_CHUNKS

    [upstream] = fake_realtime.sessions
    assert upstream.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert upstream.headers["openai-beta"] == "realtime=v1"
    assert upstream.offered_subprotocols == ["realtime"]
    assert upstream.model == MODEL
    assert [e["type"] for e in upstream.received] == [
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "response.create",
    ]
    assert base64.b64decode(upstream.received[1]["audio"]) == CLIENT_AUDIO
    assert upstream.wait_closed() == (1000, "bye")
    assert CLIENT_KEY not in json.dumps(upstream.headers)

    entry = record_for(redis_url, record_id)
    record = entry.record
    assert (record.user_id, record.model) == ("alice", MODEL)
    assert record.request.path == "/v1/realtime"
    assert "[REDACTED]" in record.request.headers["sec-websocket-protocol"]
    assert record.response is not None and record.response.status_code == 101
    assert record.response.streaming is True
    body = record.response.body
    assert body["close"] == {
        "initiated_by": "client",
        "code": 1000,
        "reason": "bye",
        "relayed_code": 1000,
    }
    assert body["usage"] == USAGE and body["responses"] == 1
    assert body["events_total"] == len(body["events"]) == 4 + len(seen)
    assert body["events_omitted"] == 0
    order = [(e["direction"], e["event"]["type"]) for e in body["events"]]
    assert order == [
        ("server", "session.created"),
        ("client", "session.update"),
        ("server", "session.updated"),
        ("client", "input_audio_buffer.append"),
        ("client", "input_audio_buffer.commit"),
        ("server", "input_audio_buffer.committed"),
        ("client", "response.create"),
        ("server", "response.created"),
        *[("server", "response.output_audio.delta")] * len(AUDIO_CHUNKS),
        ("server", "response.output_audio_transcript.delta"),
        ("server", "response.done"),
    ]
    assert body["events"][3]["event"]["audio"] == summary(CLIENT_AUDIO)
    recorded_deltas = [e["event"]["delta"] for e in body["events"][8:11]]
    assert recorded_deltas == [summary(chunk) for chunk in AUDIO_CHUNKS]
    assert body["events"][11]["event"]["delta"] == "Hello there"
    elapsed = [e["elapsed_ms"] for e in body["events"]]
    assert elapsed == sorted(elapsed)
    assert all(datetime.fromisoformat(e["timestamp"]) >= record.timestamp for e in body["events"])

    raw = entry.raw.decode()
    assert CLIENT_KEY not in raw and UPSTREAM_KEY not in raw
    assert base64.b64encode(CLIENT_AUDIO).decode()[:64] not in raw

    # The session is counted like any call and ends with its own log event.
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{realtime_proxy.url}/metrics")).text
    counted = [
        line for line in metrics.splitlines()
        if line.startswith("proxy_requests_total{") and 'status="101"' in line
    ]
    assert len(counted) == 1 and f'model="{MODEL}"' in counted[0], counted
    for _ in range(100):  # the log thread writes shortly after
        if "realtime_session_completed" in realtime_proxy.log():
            break
        await asyncio.sleep(0.02)
    assert "realtime_session_completed" in realtime_proxy.log()
    assert "record_build_failed" not in realtime_proxy.log()


async def test_the_upstream_closing_is_relayed_with_its_code(
    realtime_proxy: RunningProxy, fake_realtime: FakeRealtime, redis_url: str
) -> None:
    query_secret = "sk-in-the-query-0123456789"
    async with connect(
        f"{realtime_url(realtime_proxy, 'close-after-response')}&api-key={query_secret}",
        additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        proxy=None,
    ) as ws:
        assert ws.subprotocol is None
        assert ws.response is not None
        record_id = ws.response.headers["x-proxy-record-id"]
        await converse(ws)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert (ws.close_code, ws.close_reason) == (SERVER_CLOSE_CODE, SERVER_CLOSE_REASON)

    [upstream] = fake_realtime.sessions
    assert upstream.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    entry = record_for(redis_url, record_id)
    record = entry.record
    assert record.user_id == "alice" and record.model == "close-after-response"
    assert record.request.query.endswith("api-key=[REDACTED]")
    assert query_secret not in entry.raw.decode()
    assert record.response is not None
    assert record.response.body["close"] == {
        "initiated_by": "upstream",
        "code": SERVER_CLOSE_CODE,
        "reason": SERVER_CLOSE_REASON,
        "relayed_code": SERVER_CLOSE_CODE,
    }
    assert record.error is None


async def test_an_unknown_key_is_refused_before_the_upstream_is_contacted(
    realtime_proxy: RunningProxy, fake_realtime: FakeRealtime, redis_url: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            realtime_url(realtime_proxy),
            subprotocols=["realtime", "openai-insecure-api-key.sk-wrong-key-123456"],  # type: ignore[list-item]
            proxy=None,
        ):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body or b"")["error"]["code"] == "invalid_api_key"
    assert fake_realtime.sessions == [] and fake_realtime.refused == []

    entry = record_for(redis_url, response.headers["x-proxy-record-id"])
    assert entry.record.error is not None and entry.record.error.type == "invalid_api_key"
    assert entry.record.response is not None and entry.record.response.status_code == 401
    assert "sk-wrong-key-123456" not in entry.raw.decode()


async def test_passthrough_sends_the_clients_own_key_and_relays_the_upstreams_refusal(
    start_proxy: StartProxy, fake_realtime: FakeRealtime, redis_url: str
) -> None:
    proxy = start_proxy(OPENAI_BASE_URL=fake_realtime.base_url, AUTH_MODE="passthrough")
    async with connect(
        realtime_url(proxy),
        subprotocols=["realtime", f"openai-insecure-api-key.{CLIENT_KEY}"],  # type: ignore[list-item]
        proxy=None,
    ) as ws:
        assert ws.response is not None
        record_id = ws.response.headers["x-proxy-record-id"]
        await receive_until(ws, "session.created")
    [upstream] = fake_realtime.sessions
    assert upstream.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert upstream.offered_subprotocols == ["realtime"]
    entry = record_for(redis_url, record_id)
    assert entry.record.user_id == passthrough_user_id(CLIENT_KEY)
    assert CLIENT_KEY not in entry.raw.decode()

    with pytest.raises(InvalidStatus) as refused:
        async with connect(realtime_url(proxy), proxy=None):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body or b"") == REFUSAL
    record = record_for(redis_url, response.headers["x-proxy-record-id"]).record
    assert record.response is not None and record.response.status_code == 401
    assert record.response.body == REFUSAL and record.user_id is None


async def test_a_foreign_page_is_refused_and_an_unreachable_upstream_is_a_502(
    start_proxy: StartProxy, redis_url: str
) -> None:
    proxy = start_proxy(OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")
    # AUTH_MODE=none: a web page (it sends Origin) may not spend the upstream key.
    with pytest.raises(InvalidStatus) as forbidden:
        async with connect(realtime_url(proxy), origin="https://evil.example", proxy=None):  # type: ignore[arg-type]
            pass
    assert forbidden.value.response.status_code == 403
    assert b"origin_not_allowed" in (forbidden.value.response.body or b"")

    with pytest.raises(InvalidStatus) as refused:
        async with connect(realtime_url(proxy), proxy=None):
            pass
    response = refused.value.response
    assert response.status_code == 502
    assert json.loads(response.body or b"")["error"]["code"] == "upstream_unreachable"
    record = record_for(redis_url, response.headers["x-proxy-record-id"]).record
    assert record.error is not None and record.error.type == "upstream_unreachable"


async def test_a_client_that_drops_the_connection_closes_the_upstream_and_is_recorded(
    realtime_proxy: RunningProxy, fake_realtime: FakeRealtime, redis_url: str
) -> None:
    ws = await connect(
        realtime_url(realtime_proxy),
        additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        proxy=None,
    )
    assert ws.response is not None
    record_id = ws.response.headers["x-proxy-record-id"]
    await receive_until(ws, "session.created")
    ws.transport.abort()  # no close frame: the TCP connection just ends
    await ws.wait_closed()

    [upstream] = fake_realtime.sessions
    # uvicorn reports a lost connection as 1005 (no code); 1005 may not be sent, so the
    # upstream gets a normal closure.
    assert upstream.wait_closed() == (1000, "")
    record = record_for(redis_url, record_id).record
    assert record.response is not None
    assert record.response.body["close"] == {
        "initiated_by": "client",
        "code": 1005,
        "reason": "",
        "relayed_code": 1000,
    }
    assert [e["event"]["type"] for e in record.response.body["events"]] == ["session.created"]


@pytest.mark.slow
async def test_stopping_the_proxy_closes_both_sides_and_keeps_the_record(
    realtime_proxy: RunningProxy, fake_realtime: FakeRealtime, redis_url: str
) -> None:
    async with connect(
        realtime_url(realtime_proxy),
        additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"},
        proxy=None,
    ) as ws:
        assert ws.response is not None
        record_id = ws.response.headers["x-proxy-record-id"]
        await receive_until(ws, "session.created")
        realtime_proxy.process.terminate()  # SIGTERM, as an orchestrator stops a replica
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1012  # "service restart": the client may reconnect elsewhere

    [upstream] = fake_realtime.sessions
    assert upstream.wait_closed()[0] == 1001
    record = record_for(redis_url, record_id).record
    assert record.error is not None and record.error.type == "proxy_stopped"
    assert record.response is not None
    assert record.response.body["close"]["initiated_by"] == "proxy"


@pytest.mark.slow
async def test_an_upstream_that_stops_reading_cannot_lose_the_record_at_sigterm(
    start_proxy: StartProxy, fake_realtime: FakeRealtime, redis_url: str
) -> None:
    proxy = start_proxy(OPENAI_BASE_URL=fake_realtime.base_url, REALTIME_SEND_TIMEOUT_S="5")
    chunk = os.urandom(256 * 1024)  # incompressible: permessage-deflate cannot shrink it
    sent = 0

    async def flood(ws: ClientConnection) -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(chunk)
                sent += 1
                await asyncio.sleep(0)  # the test's own steps run meanwhile

    async def until_blocked() -> None:
        """Until the proxy takes no more: its send to the upstream is blocked."""
        seen = -1
        while sent != seen:
            seen = sent
            await asyncio.sleep(1.0)

    async with connect(realtime_url(proxy, "stop-reading"), proxy=None) as ws:
        assert ws.response is not None
        record_id = ws.response.headers["x-proxy-record-id"]
        await receive_until(ws, "session.created")
        sender = asyncio.create_task(flood(ws))
        await asyncio.wait_for(until_blocked(), 15)
        proxy.process.terminate()
        # It stops within its graceful wait (30 s), not cut by it.
        status = await asyncio.to_thread(proxy.process.wait, 20)
        sender.cancel()

    assert status == -signal.SIGTERM
    assert "proxy_stopped" in proxy.log()
    record = record_for(redis_url, record_id).record
    # Stuck in the send: the send's time limit ends it. (Under heavy load the flood may
    # pause long enough to look blocked while it is not: the shutdown's 1012 ends it.)
    assert record.error is not None
    assert record.error.type in ("upstream_stalled", "proxy_stopped")
    assert record.response is not None
    if record.error.type == "upstream_stalled":
        assert record.response.body["close"]["relayed_code"] == 1011
