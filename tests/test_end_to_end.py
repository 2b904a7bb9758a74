"""The quick start, end to end: ``make run``'s script, a real SDK call, the line in the file.

``scripts/run.sh`` starts the proxy and the shipper against the test's private Redis and
fake upstream; an ``openai`` client calls the proxy with a per-user key; the exchange must
appear, once, in ``{user}_{model}_{day}.jsonl`` with the id the proxy answered with, and
Ctrl-C (SIGINT to the process group) must stop everything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.terminal import terminal_signals
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
UPSTREAM_KEY = "sk-upstream-e2e-SECRET-91c4"
PROXY_KEY = "pk-alice-e2e-6d2b"


@pytest.fixture
def stack(
    tmp_path: Path, redis_server: RedisServer, fake_upstream: FakeUpstream
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_dir = tmp_path / "logs"
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "OPENAI_BASE_URL": fake_upstream.base_url,
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "PROXY_HOST": "127.0.0.1",
        "PROXY_PORT": str(port),
        "AUTH_MODE": "keys",
        "PROXY_API_KEYS": f"{PROXY_KEY}=alice",
        "LOCAL_LOG_DIR": str(log_dir),
    }
    output = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [str(REPO / "scripts/run.sh")],
        cwd=tmp_path,  # no .env there: only the environment above counts
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=terminal_signals,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 30, "the proxy to come up", interval_s=0.1)
        yield url, log_dir
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert process.wait(timeout=30) is not None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()
        print((tmp_path / "run.log").read_text(errors="replace"))


def _wait_for_lines(path: Path, count: int, timeout_s: float = 20) -> list[dict[str, object]]:

    def lines() -> list[str]:
        found = path.read_text().splitlines() if path.exists() else []
        return found if len(found) >= count else []

    return [json.loads(line)
            for line in wait_until(lines, timeout_s, f"{count} lines in {path}", interval_s=0.1)]


@pytest.mark.slow
def test_a_call_through_the_stack_lands_once_in_the_users_file(
    stack: tuple[str, Path],
) -> None:
    url, log_dir = stack
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=PROXY_KEY, max_retries=0)
    plain = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    streamed = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], stream=True
    )
    pieces = [chunk.choices[0].delta.content for chunk in streamed.parse() if chunk.choices]
    text = "".join(piece or "" for piece in pieces)
    assert text == plain.parse().choices[0].message.content == "Hello world!"

    day = datetime.now(UTC).strftime("%Y%m%d")
    records = _wait_for_lines(log_dir / f"alice_gpt-4o-mini_{day}.jsonl", 2)
    time.sleep(1)  # nothing more may arrive: each exchange exactly once
    assert len((log_dir / f"alice_gpt-4o-mini_{day}.jsonl").read_text().splitlines()) == 2
    assert [r["id"] for r in records] == [
        plain.headers["x-proxy-record-id"],
        streamed.headers["x-proxy-record-id"],
    ]
    assert all(r["user_id"] == "alice" and r["model"] == "gpt-4o-mini" for r in records)
    response: dict[str, Any] = records[1]["response"]  # type: ignore[assignment]
    assert response["streaming"] is True
    assert response["body"]["choices"][0]["message"]["content"] == "Hello world!"
    # The SDK did not ask for usage; the proxy did, so the file knows the stream's tokens.
    assert response["body"]["usage"] == records[0]["response"]["body"]["usage"]  # type: ignore[index]
    assert [r.get("usage_source") for r in records] == ["upstream", "injected"]
    raw = "".join(path.read_text() for path in log_dir.iterdir())
    assert UPSTREAM_KEY not in raw and PROXY_KEY not in raw
