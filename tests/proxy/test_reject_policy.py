"""``SPOOL_FULL_POLICY=reject``: a call answered 2xx never loses its record.

Each admitted call holds room in the spool for its record, so a call is refused (503
``logging_unavailable``) before it could be answered and its record dropped; the
Realtime handshake is refused the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from shared.spool_format import read_records, segment_paths
from tests.proxy.conftest import StartProxy
from tests.support.fake_realtime import FakeRealtime
from tests.support.ports import free_port
from tests.support.waiting import async_wait_until

PROMPT_BYTES = 150_000
"""A record holds the request body: each record is about 150 KB."""
ROUNDS, CONCURRENT_CALLS = 3, 8


@pytest.fixture
def fake_realtime() -> Iterator[FakeRealtime]:
    with FakeRealtime() as server:
        yield server


def _chat(url: str, index: int) -> httpx.Response:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"{index} " + "x" * PROMPT_BYTES}],
    }
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def _spooled_ids(folder: Path) -> set[str]:
    return {json.loads(line)["id"] for p in segment_paths(folder) for line in read_records(p)}


def test_every_call_answered_2xx_keeps_its_record_at_the_boundary(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    proxy = start_proxy(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # Redis down: every record is spooled
        SPOOL_DIR=str(spool),
        SPOOL_MAX_BYTES="1000000",
        RECORD_MAX_BYTES="200000",
        SPOOL_FULL_POLICY="reject",
    )

    answers: list[httpx.Response] = []
    with ThreadPoolExecutor(CONCURRENT_CALLS) as pool:
        for round_ in range(ROUNDS):
            calls = range(round_ * CONCURRENT_CALLS, (round_ + 1) * CONCURRENT_CALLS)
            answers += pool.map(lambda index: _chat(proxy.url, index), calls)

    answered = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 503]
    assert len(answered) + len(refused) == len(answers)
    assert answered and refused  # the boundary was crossed
    assert {a.json()["error"]["code"] for a in refused} == {"logging_unavailable"}
    assert httpx.get(f"{proxy.url}/ready").status_code == 503
    proxy.stop()
    assert "record_dropped" not in proxy.log()
    answered_ids = {a.headers["x-proxy-record-id"] for a in answered}
    assert answered_ids <= _spooled_ids(spool)


async def test_a_realtime_handshake_is_refused_while_there_is_no_room(
    start_proxy: StartProxy, fake_realtime: FakeRealtime
) -> None:
    # Room for two sessions' records: a third is refused while both are open.
    proxy = start_proxy(
        OPENAI_BASE_URL=fake_realtime.base_url,
        SPOOL_MAX_BYTES="140000",
        RECORD_MAX_BYTES="65536",
        SPOOL_FULL_POLICY="reject",
    )
    url = f"{proxy.url.replace('http://', 'ws://')}/v1/realtime?model=gpt-realtime"
    async with (
        connect(url, proxy=None),
        connect(url, proxy=None),
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        assert (await client.get("/ready")).status_code == 503
        assert (await client.get("/v1/models")).status_code == 503
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, proxy=None):
                pass
        response = refused.value.response
        assert response.status_code == 503
        assert json.loads(response.body or b"")["error"]["code"] == "logging_unavailable"
        assert response.headers["retry-after"] == "5"
        assert len(fake_realtime.sessions) == 2
    # Both sessions ended and their records written: the room is given back.
    async with httpx.AsyncClient(base_url=proxy.url) as client:

        async def ready() -> bool:
            return (await client.get("/ready")).status_code == 200

        await async_wait_until(ready, 10, "the sessions' room given back")
    async with connect(url, proxy=None):
        pass

    async def third_session_seen() -> bool:  # the fake records it in its own thread
        return len(fake_realtime.sessions) == 3

    await async_wait_until(third_session_seen, 10, "the third session reaching the upstream")
