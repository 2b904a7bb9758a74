"""Can this proxy take traffic? One answer, used by ``GET /ready`` and ``GET /health``.

Ready means every record of an exchange can go somewhere durable: today, Redis answers a
``PING`` within ``READY_TIMEOUT_S``. The spool adds "or the spool can take it" here, in
``readiness``, and nowhere else.
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


async def redis_answers(runtime: Runtime) -> bool:
    """Whether Redis answers ``PING`` in time; a hung server counts as unreachable."""
    try:
        await asyncio.wait_for(runtime.redis.ping(), runtime.settings.ready_timeout_s)
    except (RedisError, OSError, TimeoutError):
        return False
    return True


async def readiness(runtime: Runtime) -> Readiness:
    """Whether the proxy can publish (later: or spool) a record right now."""
    reachable = await redis_answers(runtime)
    return Readiness(ready=reachable, redis_reachable=reachable)
