"""The one way the services connect to Redis: a single server or a Redis Cluster.

Every call is bounded by the socket timeout, and redis-py's own retries are off: a
retried ``XADD`` or script could run twice, and each caller has its own retry policy.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

RedisClient = aioredis.Redis | RedisCluster


def connect(
    redis_url: str,
    *,
    timeout_s: float,
    connect_timeout_s: float | None = None,
    block_ms: int = 0,
    cluster: bool = False,
    keepalive: bool = False,
) -> RedisClient:
    """A client whose every call ends within ``timeout_s`` (plus ``block_ms`` for blocking reads).

    Raises ``ValueError`` for a URL redis-py cannot use.
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": timeout_s if connect_timeout_s is None else connect_timeout_s,
        "socket_timeout": timeout_s + block_ms / 1000,
        "retry": Retry(NoBackoff(), 0),
    }
    if keepalive:
        options |= {"socket_keepalive": True, "health_check_interval": 30}
    if cluster:
        return RedisCluster.from_url(redis_url, **options)
    return aioredis.Redis.from_url(redis_url, **options)
