"""Can this proxy take traffic? One answer, used by ``GET /ready`` and ``GET /health``.

Ready means every record of an exchange can go somewhere durable: Redis answers a
``PING`` within ``READY_TIMEOUT_S``, or the spool can take it (writable, not full) — and
the proxy is not refusing calls under ``SPOOL_FULL_POLICY=reject``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.exceptions import RedisError

from proxy.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Readiness:
    """The verdict and what it was made of."""

    ready: bool
    redis_reachable: bool
    spool_accepts: bool
    refusing: bool


async def redis_answers(runtime: Runtime) -> bool:
    """Whether Redis answers ``PING`` in time; a hung server counts as unreachable."""
    try:
        await asyncio.wait_for(runtime.redis.ping(), runtime.settings.ready_timeout_s)
    except (RedisError, OSError, TimeoutError):
        return False
    return True


async def readiness(runtime: Runtime) -> Readiness:
    """Whether the proxy can publish or spool a record right now."""
    reachable = await redis_answers(runtime)
    spool_accepts = runtime.publishing.spool.can_accept
    refusing = runtime.publishing.reservations.refusing
    return Readiness(
        ready=(reachable or spool_accepts) and not refusing,
        redis_reachable=reachable,
        spool_accepts=spool_accepts,
        refusing=refusing,
    )
