"""Fixtures for the proxy tests: the REAL proxy (``python -m proxy``) in a subprocess.

``start_proxy(**env)`` starts one against the test's fake upstream and Redis; keyword
arguments override its environment (``AUTH_MODE="keys"``...). Its log is printed at
teardown, so a failing test shows what the proxy said.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis

from shared.record import Record
from shared.streams import DEFAULT_STREAM, RECORD_FIELD
from tests.support.fake_upstream import FakeUpstream
from tests.support.ports import free_port
from tests.support.waiting import wait_until

UPSTREAM_KEY = "sk-upstream-SECRET-7f3a9c2e41b8"
"""The key the proxy sends upstream; it must never appear in a record."""
CLIENT_KEY = "sk-client-OWNKEY-55d1e0a7c9"
"""A key a client sends; it must never reach the upstream (outside passthrough) or a record."""
START_TIMEOUT_S = 20.0


@dataclass
class RunningProxy:
    """A proxy subprocess listening on ``url``."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        """What an OpenAI SDK takes as ``base_url``."""
        return f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = 5.0) -> None:
        """Poll the log until it holds ``text`` (lines reach it up to 50 ms late)."""
        wait_until(lambda: text in self.log(), timeout_s,
                   lambda: f"{text!r} in the log:\n{self.log()}", interval_s=0.02)

    def metric(self, name: str) -> float:
        """The value of a metric without labels (0 when absent) from ``GET /metrics``."""
        text = httpx.get(f"{self.url}/metrics").text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return 0.0

    def wait_for_metric(self, name: str, value: float, timeout_s: float = 10.0) -> None:
        """Poll ``GET /metrics`` until ``name`` reaches ``value``."""
        wait_until(lambda: self.metric(name) >= value, timeout_s,
                   lambda: f"{name} = {self.metric(name)} to reach {value}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


StartProxy = Callable[..., RunningProxy]


def _wait_healthy(proxy: RunningProxy) -> None:

    def healthy() -> bool:
        if proxy.process.poll() is not None:
            raise RuntimeError(f"proxy exited at start-up:\n{proxy.log()}")
        try:
            return httpx.get(f"{proxy.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, START_TIMEOUT_S, lambda: f"the proxy healthy:\n{proxy.log()}")


@pytest.fixture
def start_proxy(
    fake_upstream: FakeUpstream, redis_url: str, tmp_path: Path
) -> Iterator[StartProxy]:
    """Start real proxies; each is stopped (and its log printed) at teardown."""
    started: list[RunningProxy] = []

    def start(**overrides: str) -> RunningProxy:
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OPENAI_", "PROXY_", "REDIS_", "AUTH_", "MAX_", "UPSTREAM_"))
        }
        env.update(
            OPENAI_BASE_URL=fake_upstream.base_url,
            OPENAI_API_KEY=UPSTREAM_KEY,
            REDIS_URL=redis_url,
            PROXY_HOST="127.0.0.1",
            PROXY_PORT=str(port),
            LOG_LEVEL="INFO",
            REDIS_TIMEOUT_S="1",
        )
        env.update(overrides)
        workdir = tmp_path / f"proxy-{len(started)}"
        workdir.mkdir()
        log_path = workdir / "proxy.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "proxy"],
                cwd=workdir,  # no stray .env from the repository
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        proxy = RunningProxy(f"http://127.0.0.1:{port}", process, log_path)
        started.append(proxy)
        _wait_healthy(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
        print(f"--- proxy log ({proxy.url}) ---\n{proxy.log()}")


@pytest.fixture
def proxy(start_proxy: StartProxy) -> RunningProxy:
    """A proxy with the default settings (AUTH_MODE=none)."""
    return start_proxy()


@dataclass
class StreamEntry:
    """One entry of the records stream: its raw field value and the parsed record."""

    raw: bytes
    record: Record


def _entries(client: redis.Redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(DEFAULT_STREAM))


def read_records(
    redis_url: str, count: int, timeout_s: float = 10.0
) -> list[StreamEntry]:
    """Poll the stream until it holds ``count`` entries; returns them (fails after timeout)."""
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(
            lambda: len(_entries(client)) >= count, timeout_s,
            lambda: f"{count} records in the stream, not {len(_entries(client))}",
            interval_s=0.02,
        )
        entries = _entries(client)
    finally:
        client.close()
    out = []
    for _, fields in entries:
        assert set(fields) == {RECORD_FIELD.encode()}, fields
        raw = fields[RECORD_FIELD.encode()]
        out.append(StreamEntry(raw, Record.from_json(raw)))
    return out


def record_for(redis_url: str, record_id: str, timeout_s: float = 10.0) -> StreamEntry:
    """The stream entry whose record has ``record_id`` (polls until it is there)."""
    client = redis.Redis.from_url(redis_url)

    def entry() -> StreamEntry | None:
        for _, fields in _entries(client):
            raw = fields[RECORD_FIELD.encode()]
            if json.loads(raw)["id"] == record_id:
                return StreamEntry(raw, Record.from_json(raw))
        return None

    try:
        return wait_until(entry, timeout_s, f"record {record_id} in the stream", interval_s=0.02)
    finally:
        client.close()
