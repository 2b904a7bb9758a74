"""What a failed round trip to Redis means for the records in it.

A refused connection means nothing was sent: the records certainly did not land. Any
other failure — a timeout, a connection closed before the reply — may come after Redis
applied the commands: those records are *ambiguous*. Both kinds are spooled under their
own ids; the difference is only in what is counted (``proxy_records_ambiguous_total``).
"""

from __future__ import annotations

import socket

from redis.exceptions import RedisError

ROUND_TRIP_ERRORS = (RedisError, OSError, TimeoutError)
"""What a pipeline's ``execute`` raises when Redis is down, hung or going away."""


def never_sent(exc: BaseException) -> bool:
    """Whether the failure happened before anything reached Redis (refused, unresolvable)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError | socket.gaierror):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
