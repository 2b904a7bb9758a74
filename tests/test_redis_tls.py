"""``rediss://`` with a private CA (REDIS_TLS_CA_FILE), against a real redis-server over TLS."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.redis_client import connect
from shared.settings import CommonSettings
from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import redis_server_binary

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(folder: Path) -> None:
    """A CA, and a certificate it signed for 127.0.0.1."""
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca", cwd=folder)
    _openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext",
             cwd=folder)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    _certificates(folder)
    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.pem", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no", "--save", "",
         "--dir", str(folder), "--logfile", "redis.log"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield port, folder / "ca.pem"
    process.kill()
    process.wait(timeout=10)


async def test_a_server_signed_by_the_configured_ca_is_trusted(tls_redis: tuple[int, Path]) -> None:
    port, ca_file = tls_redis
    settings = CommonSettings(
        redis_url=f"rediss://127.0.0.1:{port}/0", redis_tls_ca_file=ca_file, _env_file=None
    )
    client = connect(settings, timeout_s=5)

    assert await client.xadd("tls:stream", {"record": b"{}"})
    assert await client.xlen("tls:stream") == 1
    await client.aclose()


async def test_without_the_ca_the_server_is_refused(tls_redis: tuple[int, Path]) -> None:
    port, _ = tls_redis
    settings = CommonSettings(redis_url=f"rediss://127.0.0.1:{port}/0", _env_file=None)
    client = connect(settings, timeout_s=5)

    with pytest.raises(RedisConnectionError, match=r"(?i)certificate"):
        await client.ping()
    await client.aclose()


def test_behind_sentinel_both_the_sentinels_and_the_primary_are_reached_over_tls(
    tls_redis: tuple[int, Path],
) -> None:
    _, ca_file = tls_redis
    settings = CommonSettings(
        redis_url="rediss://:secret@unused:6379/2", redis_sentinels="127.0.0.1:26379",
        redis_tls_ca_file=ca_file, _env_file=None,
    )

    client = connect(settings, timeout_s=5)  # connects lazily: only the wiring is checked

    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert issubclass(pool.connection_class, SentinelManagedSSLConnection)
    assert pool.connection_kwargs["ssl_ca_certs"] == str(ca_file)
    assert (pool.connection_kwargs["password"], pool.connection_kwargs["db"]) == ("secret", 2)
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool
    assert sentinel.connection_kwargs["ssl_ca_certs"] == str(ca_file)
