"""One batched ``XADD`` round trip, and what it means for each record in it.

The publisher and the drainer both send records this way. Each record comes out as:

- ``PUBLISHED``: Redis stored it, and with ``REDIS_MIN_REPLICAS`` set, ``WAIT`` counted
  that many replicas holding it (``shared.replication``);
- ``FAILED``: it certainly did not land: the connection was refused before anything
  was sent, or Redis answered the ``XADD`` with an error;
- ``AMBIGUOUS``: it may have landed: a timeout, a connection lost after sending (also
  on one command of the pipeline), or a ``WAIT`` that counted too few replicas (a write
  no replica has can vanish in a failover).

Only ``PUBLISHED`` records are let go of. The others are kept (spooled, or left in their
segment) and published again under the same ids; the shipper's per-id check keeps
a second copy out of the files. ``docs/redis.md`` lists the counters.
"""

from __future__ import annotations

import asyncio
import enum
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.redis_client import RedisClient, forget_primary
from shared.replication import ReplicaWait
from shared.streams import RECORD_FIELD

_FIELD = RECORD_FIELD.encode()
ROUND_TRIP_ERRORS = (RedisError, OSError, TimeoutError)
"""What a pipeline's ``execute`` raises when Redis is down, hung or going away."""


class Outcome(enum.Enum):
    """Where one record stands after a round trip."""

    PUBLISHED = "published"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class Landing:
    """The outcome of each record of a batch, in order, and the first error seen."""

    outcomes: list[Outcome]
    error: str | None = None

    def count(self, outcome: Outcome) -> int:
        """How many records came out as ``outcome``."""
        return self.outcomes.count(outcome)

    @property
    def published_prefix(self) -> int:
        """How many records, from the start of the batch, are published."""
        for index, outcome in enumerate(self.outcomes):
            if outcome is not Outcome.PUBLISHED:
                return index
        return len(self.outcomes)


def never_sent(exc: BaseException) -> bool:
    """Whether the failure happened before anything reached Redis (refused, unresolvable)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError | socket.gaierror):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _command_outcome(result: object) -> Outcome:
    if not isinstance(result, BaseException):
        return Outcome.PUBLISHED
    # A connection lost on one command of the pipeline may come after Redis applied it.
    lost = isinstance(result, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError)
    return Outcome.AMBIGUOUS if lost and not never_sent(result) else Outcome.FAILED


async def xadd_batch(
    redis: RedisClient,
    stream: str,
    payloads: Sequence[bytes],
    *,
    timeout_s: float,
    replica_wait: ReplicaWait,
) -> Landing:
    """``XADD stream * record <payload>`` for each payload in one round trip, then ``WAIT``.

    Never raises for a Redis failure: it is in the outcomes. The round trip is bounded by
    ``timeout_s`` plus the ``WAIT`` timeout.
    """
    try:
        async with asyncio.timeout(timeout_s + replica_wait.timeout_s):
            target = await replica_wait.target(redis, stream) if replica_wait.enabled else None
            async with redis.pipeline(transaction=False) as pipe:
                key = stream.encode()
                for payload in payloads:
                    # ``xadd``'s options, spelled out: its keyword handling is per record.
                    pipe.execute_command("XADD", key, b"*", _FIELD, payload)
                if replica_wait.enabled:
                    replica_wait.queue(pipe, target)
                results = await pipe.execute(raise_on_error=False)
    except ROUND_TRIP_ERRORS as exc:
        outcome = Outcome.FAILED if never_sent(exc) else Outcome.AMBIGUOUS
        return Landing([outcome] * len(payloads), type(exc).__name__)
    added = results[: len(payloads)]
    outcomes = [_command_outcome(result) for result in added]
    error = next((type(r).__name__ for r in added if isinstance(r, BaseException)), None)
    if replica_wait.enabled and not replica_wait.confirmed(results[-1], redis, stream, target):
        outcomes = [Outcome.AMBIGUOUS if o is Outcome.PUBLISHED else o for o in outcomes]
        error = error or f"WAIT {replica_wait.replicas}: {results[-1]!r}"
        await forget_primary(redis)
    return Landing(outcomes, error)
