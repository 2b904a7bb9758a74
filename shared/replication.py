"""Waiting for replicas: a write counts only once ``REDIS_MIN_REPLICAS`` replicas have it.

Redis replicates asynchronously: a primary can acknowledge a write and die before any
replica has it, and the promoted replica never knew it. ``WAIT replicas timeout_ms``,
sent on the *same connection* right after the writes, answers how many replicas hold
everything that connection wrote. So every write that must survive a failover is sent
in a pipeline (one connection) followed by ``WAIT``; on a Cluster, ``WAIT`` is routed to
the node that owns the key, which is where the writes went. A short count, a timeout or
an error makes the writes *ambiguous*: they may or may not survive, and the caller
treats them as not done and repeats them under the same ids (docs/redis.md, "WAIT").

With ``REDIS_MIN_REPLICAS=0`` (the default) nothing is waited for and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from shared.redis_client import RedisClient, forget_primary


class NotReplicated(RedisError):
    """Fewer replicas than ``REDIS_MIN_REPLICAS`` confirmed a write within the timeout."""


@dataclass(frozen=True, slots=True)
class ReplicaWait:
    """How many replicas must confirm a write, and how long to wait for them."""

    replicas: int = 0
    timeout_ms: int = 1000

    @property
    def enabled(self) -> bool:
        """Whether ``WAIT`` is sent at all."""
        return self.replicas > 0

    @property
    def timeout_s(self) -> float:
        """The longest a ``WAIT`` adds to a round trip (nothing when disabled)."""
        return self.timeout_ms / 1000 if self.enabled else 0.0

    async def target(self, client: RedisClient, key: str) -> Any:
        """Where ``WAIT`` must go for writes to ``key``: the key's primary on a Cluster, else None.

        Read before the writes are queued; ``confirmed`` checks after the round trip that
        the slot did not move meanwhile (a redirected write went to another connection).
        """
        if isinstance(client, RedisCluster):
            await client.initialize()  # at once when the slots are known already
            return client.get_node_from_key(key)
        return None

    def queue(self, pipe: Any, target: Any) -> None:
        """Append ``WAIT`` to a non-transactional pipeline, after its writes."""
        if isinstance(pipe, ClusterPipeline):
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms, target_nodes=target)
        else:
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)

    def confirmed(self, reply: object, client: RedisClient, key: str, target: Any) -> bool:
        """Whether the ``WAIT`` reply counts enough replicas, from the node that took the writes."""
        if isinstance(reply, BaseException) or not isinstance(reply, int):
            return False
        if isinstance(client, RedisCluster) and client.get_node_from_key(key) != target:
            return False  # the slot moved during the round trip: the writes went elsewhere
        return reply >= self.replicas

    async def replicas_ready(self, client: RedisClient, key: str) -> bool:
        """Whether the key's primary has enough replicas connected now (true when none are
        asked for): ``WAIT`` on a connection that wrote nothing returns at once when it has.
        """
        if not self.enabled:
            return True
        target = await self.target(client, key)
        async with client.pipeline(transaction=False) as pipe:
            # A keyed command, so that a node that lost the slot answers MOVED and the
            # client learns where it went: WAIT alone carries no key to be redirected.
            pipe.exists(key)
            self.queue(pipe, target)
            _, reply = await pipe.execute(raise_on_error=False)
        if self.confirmed(reply, client, key, target):
            return True
        # Behind Sentinel the connection may lead to a node that is a replica now (a
        # sentinel the failover had not reached yet named it): this probe writes nothing,
        # so no READONLY drops it, and WAIT only answers an error there. Ask again.
        await forget_primary(client)
        return False

    async def run_script(
        self, client: RedisClient, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """``script``'s reply, raised ``NotReplicated`` if its writes were not confirmed.

        The script's own errors are raised as they are. Without replicas to wait for this
        is a plain call of the script.
        """
        if not self.enabled:
            return await script(keys=keys, args=args)
        target = await self.target(client, keys[0])
        for _ in range(2):  # a second time only when the node did not know the script
            async with client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                self.queue(pipe, target)
                reply, waited = await pipe.execute(raise_on_error=False)
            if not isinstance(reply, NoScriptError):
                break
            # A promoted replica does not have the scripts its old primary had loaded.
            script.sha = await client.script_load(script.script)
        if isinstance(reply, BaseException):
            raise reply
        if not self.confirmed(waited, client, keys[0], target):
            await forget_primary(client)
            raise NotReplicated(
                f"WAIT {self.replicas} {self.timeout_ms}: replicas did not confirm ({waited!r})"
            )
        return reply
