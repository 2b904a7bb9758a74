"""The compose entry point, for real: Debian's ``haproxy`` on ``deploy/haproxy.cfg`` in front
of three real proxies started from the compose file, with replicas that come and go.

What differs from production is in ``tests/containers/haproxy.py``: addresses only. Each
replica listens on its own loopback address (127.0.0.21, .22, ...) and a tiny DNS server
answers ``proxy`` with the live ones, as Docker's DNS does for ``--scale proxy=3``.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def _stop_at_once(replicas: Replicas, addresses: list[str]) -> None:
    """SIGTERM to several replicas together, as `--scale proxy=1` from 3 does."""
    threads = [
        threading.Thread(target=replicas.running[address].stop, args=("SIGTERM", 45))
        for address in addresses
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for address in addresses:
        del replicas.running[address]


def test_scale_down_to_one_and_a_rolling_restart_fail_no_call(
    tmp_path: Path, replicas: Replicas, redis_server: RedisServer
) -> None:
    first = ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
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
            with CallLoop(f"{lb.url}/v1", clients=4) as loop:
                time.sleep(1.0)
                # 3 -> 1: two replicas stop at once; Docker drops their DNS entries only
                # once they have exited.
                _stop_at_once(replicas, first[:2])
                dns.set_addresses(first[2:])
                time.sleep(2.0)
                # A rolling restart: a new replica first, then the old one stops.
                previous = first[2]
                for address in ["127.0.0.34", "127.0.0.35"]:
                    replicas.start(address).wait_healthy()
                    dns.set_addresses([previous, address])
                    wait_until(
                        lambda address=address: address in lb.up_addresses(), SETTLE_S * 2,
                        lambda: f"the new replica UP: {lb.servers()}",
                    )
                    _stop_at_once(replicas, [previous])
                    dns.set_addresses([address])
                    previous = address
                time.sleep(1.0)

            failures = [error for _, error in loop.outcomes if error]
            assert len(loop.outcomes) >= 50
            assert failures == [], f"{len(failures)} of {len(loop.outcomes)}: {failures[:3]}"
            assert replicas.calls_served(previous) >= 5, "the last replica gets no calls"
            answered = len(loop.outcomes)
            stream = redis.Redis(port=redis_server.port)
            wait_until(
                lambda: stream.xlen(DEFAULT_STREAM) == answered, 10,
                lambda: f"{stream.xlen(DEFAULT_STREAM)} records for {answered} calls",
            )
        finally:
            lb.stop()


def _self_signed(folder: Path) -> Path:
    """A certificate for 127.0.0.1 and its key in one PEM file, as HAProxy's `crt` reads it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = folder / "proxy.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


def test_only_the_api_is_public_and_tls_terminates_at_the_lb(
    tmp_path: Path, replicas: Replicas, fake_upstream: FakeUpstream
) -> None:
    address = "127.0.0.41"
    replicas.start(address).wait_healthy()
    cert = _self_signed(tmp_path / "tls")
    with ServiceDns("proxy") as dns:
        dns.set_addresses([address])
        lb = HAProxy(
            tmp_path / "lb", dns_port=dns.port, replica_port=replicas.port, tls_cert=cert
        ).start()
        try:
            wait_until(lambda: lb.up_addresses() == {address}, SETTLE_S * 2,
                        lambda: f"the replica UP: {lb.servers()}")
            # Operator endpoints answer on the replica (the compose network), not on the LB.
            for path in ("/", "/metrics", "/metrics/"):
                hidden = httpx.get(f"{lb.url}{path}", timeout=5)
                assert hidden.status_code == 404, path
                assert hidden.json()["error"]["code"] == "not_found"
            assert httpx.get(f"http://{address}:{replicas.port}/metrics").status_code == 200
            for path in ("/health", "/ready", "/v1/models"):
                assert httpx.get(f"{lb.url}{path}", timeout=5).status_code == 200, path

            # TLS: the official SDK over https, the certificate checked; what reaches the
            # replica as X-Forwarded-* is the LB's word, not the client's.
            fake_upstream.requests.clear()
            verified = httpx.Client(verify=ssl.create_default_context(cafile=str(cert)))
            client = openai.OpenAI(
                base_url=f"https://127.0.0.1:{lb.tls_port}/v1", api_key="sk-client",
                max_retries=0, http_client=verified,
                default_headers={"X-Forwarded-For": "203.0.113.9",
                                 "X-Forwarded-Proto": "http"},
            )
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            seen = fake_upstream.requests[-1].headers
            assert seen["x-forwarded-proto"] == "https"
            assert seen["x-forwarded-for"] == "127.0.0.1"
            assert httpx.get(f"https://127.0.0.1:{lb.tls_port}/metrics",
                             verify=ssl.create_default_context(cafile=str(cert))
                             ).status_code == 404
        finally:
            lb.stop()


def test_a_missing_tls_certificate_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "certs" / "missing-proxy.pem"
    lb = HAProxy(tmp_path / "lb", dns_port=free_port(), replica_port=free_port(),
                 tls_cert=missing)

    check = lb.check()

    assert check.returncode != 0
    assert str(missing) in check.stdout + check.stderr
