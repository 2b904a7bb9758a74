"""The one way every part connects to Redis: a single server, Sentinel, or a Redis Cluster.

Every call is bounded by the socket timeout (or, for a client whose caller bounds each
call itself, by the caller's), and redis-py's own retries are off: a retried ``XADD`` or
script could run twice, and each caller has its own retry policy.
Behind Sentinel, each new connection asks the sentinels where the primary is, so a
failover is followed without a restart (docs/redis.md, "Sentinel").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

if TYPE_CHECKING:
    from shared.settings import CommonSettings

RedisClient = aioredis.Redis | RedisCluster


def connect(
    settings: CommonSettings,
    *,
    timeout_s: float,
    connect_timeout_s: float | None = None,
    block_ms: int = 0,
    keepalive: bool = False,
    bounded_by_caller: bool = False,
) -> RedisClient:
    """A client whose every call ends within ``timeout_s`` (plus ``block_ms`` for blocking
    reads, plus ``REDIS_WAIT_TIMEOUT_MS`` when replicas are waited for).

    ``bounded_by_caller``: every call is made under the caller's own ``asyncio.timeout``,
    and only connecting has a timeout here; redis-py would otherwise arm a timer for each
    reply of a pipeline, and run each write in a task of its own.

    Raises ``ValueError`` for a URL redis-py cannot use.
    """
    wait_s = settings.replica_wait.timeout_s
    options: dict[str, Any] = {
        "socket_connect_timeout": timeout_s if connect_timeout_s is None else connect_timeout_s,
        "socket_timeout": None if bounded_by_caller else timeout_s + block_ms / 1000 + wait_s,
        "retry": Retry(NoBackoff(), 0),
    }
    if keepalive:
        options |= {"socket_keepalive": True, "health_check_interval": 30}
    tls = settings.redis_url.startswith("rediss://")
    if tls and settings.redis_tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_tls_ca_file)
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, **options)
    if settings.redis_sentinels:
        return _sentinel_primary(settings, options, tls=tls)
    return aioredis.Redis.from_url(settings.redis_url, **options)


def _sentinel_primary(
    settings: CommonSettings, options: dict[str, Any], *, tls: bool
) -> aioredis.Redis:
    # REDIS_URL still says TLS or not, the credentials and the database; the sentinels
    # say where the primary is. They are reached over TLS too when the URL says so.
    url: dict[str, Any] = dict(parse_url(settings.redis_url))
    for where in ("host", "port", "path", "connection_class"):
        url.pop(where, None)
    ssl: dict[str, Any] = {"ssl": True} if tls else {}
    sentinel_options = {
        "socket_connect_timeout": options["socket_connect_timeout"],
        "socket_timeout": options["socket_connect_timeout"],
        "retry": Retry(NoBackoff(), 0),
        **ssl,
        **{key: value for key, value in options.items() if key.startswith("ssl_")},
    }
    sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs=sentinel_options)
    primary: aioredis.Redis = sentinel.master_for(
        settings.redis_sentinel_master, **url, **options, **ssl
    )
    return primary


async def forget_primary(client: RedisClient) -> None:
    """Behind Sentinel: drop idle connections, so the next command asks where the primary is.

    A primary frozen past a failover and then resumed still answers as a primary for a
    while; a write it takes that no replica confirms is the sign to ask again.
    """
    pool = getattr(client, "connection_pool", None)
    if isinstance(pool, SentinelConnectionPool):
        await pool.disconnect(inuse_connections=False)
