"""The compose entry point, for real: Debian's ``haproxy`` on ``deploy/haproxy.cfg`` in front
of three real proxies started from the compose file, with replicas that come and go.

What differs from production is in ``tests/containers/haproxy.py``: addresses only. Each
replica listens on its own loopback address (127.0.0.21, .22, ...) and a tiny DNS server
answers ``proxy`` with the live ones, as Docker's DNS does for ``--scale proxy=3``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
import redis

from shared.streams import DEFAULT_STREAM
from tests.containers.haproxy import HAProxy
from tests.containers.processes import ServiceProcess
from tests.containers.service_dns import ServiceDns
from tests.containers.specs import Localized, compose_config, localize, service
from tests.support.fake_upstream import FakeUpstream
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

SETTLE_S = 6.0
"""DNS hold (2 s) + two health-check intervals (2 s): how long a replica's leaving may take."""


@dataclass
class Replicas:
    """Proxy replicas on one port, each on its own loopback address."""

    base: Localized
    port: int
    workdir: Path
    running: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, address: str) -> ServiceProcess:
        # The image's healthcheck asks its own 127.0.0.1; here that is the replica's address.
        local = Localized(
            argv=self.base.argv, env={**self.base.env, "PROXY_HOST": address},
            healthcheck=[part.replace("127.0.0.1", address) for part in self.base.healthcheck],
        )
        replica = ServiceProcess(f"proxy-{address}", local, self.workdir).start()
        self.running[address] = replica
        return replica

    def calls_served(self, address: str) -> float:
        """``proxy_requests_total`` of one replica, from its own ``/metrics``."""
        text = httpx.get(f"http://{address}:{self.port}/metrics", timeout=5).text
        return sum(
            float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("proxy_requests_total{")
        )


@pytest.fixture
def replicas(
    tmp_path: Path, redis_server: RedisServer, fake_upstream: FakeUpstream
) -> Iterator[Replicas]:
    proxy = service(compose_config(tmp_path / "project"), "proxy")
    port = free_port()
    base = localize(
        proxy,
        hosts={"redis:6379": redis_server.port},
        listen_ports={"PROXY_PORT": port},
        data_dir=tmp_path / "data",  # one spool folder for all, like the shared volume
        extra_env={"OPENAI_BASE_URL": fake_upstream.base_url, "OPENAI_API_KEY": "sk-test"},
    )
    group = Replicas(base=base, port=port, workdir=tmp_path / "replicas")
    yield group
    for replica in group.running.values():
        replica.kill()


class CallLoop:
    """Clients calling through the load balancer without pause, recording each outcome."""

    def __init__(self, base_url: str, clients: int = 2) -> None:
        self.outcomes: list[tuple[float, str]] = []  # (monotonic time, "" or the error)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(base_url,), daemon=True)
            for _ in range(clients)
        ]

    def _run(self, base_url: str) -> None:
        client = openai.OpenAI(base_url=base_url, api_key="sk-client", max_retries=0, timeout=10)
        while not self._stop.is_set():
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
                self.outcomes.append((time.monotonic(), ""))
            except openai.OpenAIError as exc:
                self.outcomes.append((time.monotonic(), repr(exc)))
            time.sleep(0.05)

    def __enter__(self) -> CallLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def failures_since(self, since: float) -> list[str]:
        return [error for at, error in self.outcomes if at >= since and error]

    def calls_since(self, since: float) -> int:
        return sum(1 for at, _ in self.outcomes if at >= since)


def test_calls_spread_over_replicas_that_come_and_go(
    tmp_path: Path, replicas: Replicas, redis_server: RedisServer
) -> None:
    first = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
    for address in first:
        replicas.start(address)
    for address in first:
        replicas.running[address].wait_healthy()
    with ServiceDns("proxy") as dns:
        dns.set_addresses(first)
        lb = HAProxy(tmp_path / "lb", dns_port=dns.port, replica_port=replicas.port).start()
        try:
            wait_until(
                lambda: lb.up_addresses() == set(first), SETTLE_S * 2,
                lambda: f"3 replicas UP: {lb.servers()}",
            )
            client = openai.OpenAI(base_url=f"{lb.url}/v1", api_key="sk-client", max_retries=0)
            for _ in range(30):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            served = {address: replicas.calls_served(address) for address in first}
            assert sum(served.values()) == 30
            assert min(served.values()) >= 5, f"calls not spread: {served}"

            with CallLoop(f"{lb.url}/v1") as loop:
                time.sleep(0.5)
                # As with Docker: a replica's DNS entry leaves with it, and a new replica's
                # entry is there from its start, before its server listens.
                gone, new = first[0], "127.0.0.24"
                dns.set_addresses(first[1:])
                stopped_at = time.monotonic()
                # uvicorn re-raises SIGTERM once drained: exit by that signal, not a kill.
                assert replicas.running[gone].stop("SIGTERM", grace_s=45) in (0, -15)
                started = replicas.start(new)
                dns.set_addresses([*first[1:], new])
                started.wait_healthy()
                wait_until(
                    lambda: new in lb.up_addresses(), SETTLE_S * 2,
                    lambda: f"the new replica UP: {lb.servers()}",
                )
                settled_at = max(stopped_at + SETTLE_S, time.monotonic())
                time.sleep(max(0.0, settled_at - time.monotonic()) + 2.0)

            during = loop.failures_since(stopped_at)
            assert loop.calls_since(settled_at) >= 10
            assert loop.failures_since(settled_at) == [], during
            assert replicas.calls_served(new) >= 5, "the new replica gets no calls"
            assert gone not in lb.up_addresses()
            # Connection failures are retried on another replica: not one call failed.
            assert during == []
            # And every call has its record, also those the stopped replica had in hand.
            answered = 30 + sum(1 for _, error in loop.outcomes if not error)
            stream = redis.Redis(port=redis_server.port)
            wait_until(
                lambda: stream.xlen(DEFAULT_STREAM) == answered, 10,
                lambda: f"{stream.xlen(DEFAULT_STREAM)} records for {answered} calls",
            )
        finally:
            lb.stop()
