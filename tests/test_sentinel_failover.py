"""Behind Sentinel with ``REDIS_MIN_REPLICAS=1``: what a record counted as published
relies on through failovers, and how the spool drainer finds the primary again.

Real primary, replica and sentinels (``tests/support/redis_sentinel.py``); the clients
are the services' own (``shared.redis_client.connect``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from proxy.metrics import Metrics
from proxy.publish.drainer import Drainer
from proxy.publish.outcomes import Outcome, xadd_batch
from proxy.publish.publisher import Publisher
from proxy.publish.spool import Spool
from shared.redis_client import RedisClient, connect
from shared.settings import CommonSettings
from shared.streams import RECORD_FIELD
from tests.factories import make_pending
from tests.support.redis_sentinel import MASTER_NAME, ReplicatedRedis
from tests.support.waiting import async_wait_until, wait_until

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)

STREAM = "failover:exchanges"


def _settings(servers: ReplicatedRedis) -> CommonSettings:
    return CommonSettings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url="redis://127.0.0.1:1/0",  # the sentinels say where the primary is
        redis_sentinels=servers.sentinel_spec,
        redis_sentinel_master=MASTER_NAME,
        redis_min_replicas=1,
        redis_wait_timeout_ms=300,
    )


def _force_failover_before_sync(servers: ReplicatedRedis, replica_port: int) -> None:
    """``SENTINEL FAILOVER`` as soon as a sentinel accepts the replica on ``replica_port``,
    which has not finished its first sync: a second failover right after the first."""

    def forced() -> bool:
        with redis.Redis(port=replica_port, socket_timeout=2) as replica:
            replication = replica.info("replication")
        if replication["role"] == "master":
            return True  # the sentinels promoted it on their own, as the test is about
        assert replication["master_link_status"] == "down", \
            "the replica synced before the failover: nothing shown"
        try:
            with servers.sentinels[0].client() as sentinel:
                sentinel.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        except redis.ResponseError:  # NOGOODSLAVE while it does not know the replica yet
            return False
        return True

    wait_until(forced, 20, "a sentinel to accept the failover", interval_s=0.1)


async def test_a_published_record_survives_a_second_failover_to_the_restarted_primary(
    tmp_path: Path,
) -> None:
    # AOF on every node, as docs/redis.md asks: a primary killed and restarted comes back
    # with its data. Sentinel may promote it again before its first sync completes (a
    # sentinel calls the new primary down under load); without the AOF it would come back
    # empty and take the stream with it.
    with ReplicatedRedis(tmp_path, replicas=1, sentinels=3, appendonly=True) as servers:
        client = connect(_settings(servers), timeout_s=2)
        try:
            payloads = [pending.payload for pending in make_pending(3)]
            landing = await xadd_batch(client, STREAM, payloads, timeout_s=2,
                                       replica_wait=_settings(servers).replica_wait)
            assert landing.outcomes == [Outcome.PUBLISHED] * 3

            victim = servers.primary
            victim.kill()
            survivor = servers.wait_failover(victim.port)
            with servers.primary.client() as primary:
                # Its first sync waits: the second failover surely comes before it.
                primary.config_set("repl-diskless-sync-delay", 60)
            victim.start("--replicaof", "127.0.0.1", str(survivor))
            _force_failover_before_sync(servers, victim.port)
            assert servers.wait_failover(survivor) == victim.port

            entries = await _entries(client)
        finally:
            await client.aclose()

    assert entries == payloads


async def _entries(client: RedisClient) -> list[bytes]:
    async def read() -> list[tuple[bytes, dict[bytes, bytes]]]:
        try:
            return await client.xrange(STREAM)  # type: ignore[no-any-return]
        except redis.RedisError:  # the restarted node still loading, a stale connection
            return []

    found = await async_wait_until(read, 10, "the stream on the new primary")
    return [fields[RECORD_FIELD.encode()] for _, fields in found]


async def test_the_drainer_leaves_a_connection_to_a_replica_for_the_primary(
    tmp_path: Path,
) -> None:
    # A sentinel a failover has not reached yet names the old primary, restarted as a
    # replica meanwhile: the drainer's connection goes there. Its probe (EXISTS, WAIT)
    # never writes, so it never meets READONLY, which is what drops a connection to a
    # replica; WAIT only answers an error there. It must ask the sentinels again.
    with ReplicatedRedis(tmp_path / "redis", replicas=1, sentinels=3) as servers:
        settings = _settings(servers)
        client = connect(settings, timeout_s=2)
        metrics = Metrics()
        spool = Spool(tmp_path / "spool", "w", metrics, max_bytes=1 << 26, full_policy="drop")
        publisher = Publisher(client, STREAM, metrics, spool, queue_size=10, batch_size=10,
                              timeout_s=2, replica_wait=settings.replica_wait)
        drainer = Drainer(client, STREAM, spool, publisher, metrics, interval_s=0.1,
                          timeout_s=2, replica_wait=settings.replica_wait)
        spool.start()
        try:
            pending = make_pending(3)
            spool.append(pending)
            await spool.flush()
            await _connect_pool_to(client, servers.replicas[0].port)

            async def drained() -> bool:
                await drainer.drain_once()
                return not spool.holds_records

            started = time.monotonic()
            await async_wait_until(drained, 10, "the spool drained into the primary")
            took_s = time.monotonic() - started
            entries = await _entries(client)
        finally:
            await spool.close()
            await client.aclose()

    assert entries == [p.payload for p in pending]
    assert took_s < 5


async def _connect_pool_to(client: RedisClient, port: int) -> None:
    """Leave the client's pool one idle connection, to the node on ``port``, as if a
    sentinel had named it."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    await connection.disconnect()
    await connection.connect_to(("127.0.0.1", port))  # type: ignore[attr-defined]
    await pool.release(connection)
