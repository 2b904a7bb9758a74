"""Chaos scenarios on a replicated Redis behind Sentinel, with ``REDIS_MIN_REPLICAS=1``.

One primary, one replica, three sentinels (``tests/support/redis_sentinel.py``); one
proxy and one shipper that find the primary through the sentinels and are never
restarted. Each scenario ends as ``scenarios._finish`` does, but asks the current
primary whether the stream is empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from shared.streams import CONSUMER_GROUP, DEFAULT_STREAM
from tests.chaos.load import Load, Tally
from tests.chaos.stack import Stack
from tests.chaos.verify import Outcome, judge, wait_until_landed
from tests.support.redis_sentinel import MASTER_NAME, ReplicatedRedis

THREADS = 4
MAX_CALLS = 2500
WAIT_TIMEOUT_MS = 300
FROZEN_S = 5.0
"""Longer than the sentinels' down-after time plus an election."""


@contextmanager
def _sentinel_stack(workdir: Path) -> Iterator[tuple[Stack, ReplicatedRedis]]:
    with ReplicatedRedis(workdir / "replicated", replicas=1, sentinels=3) as servers, \
            Stack(workdir) as stack:
        stack.redis_env = {
            # The host in REDIS_URL is never used: the sentinels name the primary.
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "REDIS_SENTINELS": servers.sentinel_spec,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_MIN_REPLICAS": "1",
            "REDIS_WAIT_TIMEOUT_MS": str(WAIT_TIMEOUT_MS),
        }
        yield stack, servers


def _backlog(servers: ReplicatedRedis) -> int:
    try:
        with servers.primary.client() as client:
            length = int(client.xlen(DEFAULT_STREAM))
            try:
                pending = int(client.xpending(DEFAULT_STREAM, CONSUMER_GROUP)["pending"])
            except redis.ResponseError:
                pending = 0
            return length + pending
    except (redis.RedisError, RuntimeError):
        return -1


def _settled(stack: Stack, servers: ReplicatedRedis) -> Callable[[], bool]:
    return lambda: _backlog(servers) == 0 and stack.spooled_segments() == 0


def _finish(stack: Stack, servers: ReplicatedRedis, title: str, tally: Tally,
            fault_events: int) -> Outcome:
    seen, drain_s = wait_until_landed(
        stack.files, tally.succeeded_ids, _settled(stack, servers), timeout_s=90
    )
    outcome = judge(title, tally.calls, tally.succeeded_ids, seen, drain_s)
    services = [*stack.proxies, *stack.shippers]
    alive = all(s.process is not None and s.process.poll() is None for s in services)
    restarts = sum(s.starts - 1 for s in services)
    outcome.spooled = sum(int(p.metric("proxy_records_spooled_total")) for p in stack.proxies)
    outcome.ambiguous = sum(int(p.metric("proxy_records_ambiguous_total")) for p in stack.proxies)
    outcome.fault_events = fault_events
    failed = tally.calls - len(tally.succeeded_ids)
    notes = [f"{failed} calls failed" if failed else "", "" if alive else "a service died",
             f"{restarts} restarts" if restarts else ""]
    outcome.notes = "; ".join(filter(None, notes))
    return outcome


def sentinel_primary_killed(workdir: Path) -> Outcome:
    """``kill -9`` of the primary twice under load; each time it comes back as a replica."""
    kills = 2
    with _sentinel_stack(workdir) as (stack, servers):
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=MAX_CALLS) as load:
            for kill in range(kills):
                load.wait_calls(400 + kill * 900)
                victim = servers.primary
                victim.kill()
                new_port = servers.wait_failover(victim.port)
                victim.start("--replicaof", "127.0.0.1", str(new_port))
                servers.wait_replicas(1)
            tally = load.stop()
        title = "Sentinel: kill -9 the primary x2, REDIS_MIN_REPLICAS=1"
        return _finish(stack, servers, title, tally, fault_events=kills)


def sentinel_primary_frozen(workdir: Path) -> Outcome:
    """The primary frozen (SIGSTOP) past the failover, then resumed: a deposed primary."""
    with _sentinel_stack(workdir) as (stack, servers):
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=MAX_CALLS) as load:
            load.wait_calls(400)
            victim = servers.primary
            victim.pause()
            servers.wait_failover(victim.port)
            time.sleep(max(0.0, FROZEN_S - 3))
            victim.resume()  # it still thinks it is the primary until the sentinels convert it
            servers.wait_replicas(1)
            tally = load.stop()
        title = f"Sentinel: primary frozen (SIGSTOP) ~{FROZEN_S:.0f} s, then resumed"
        return _finish(stack, servers, title, tally, fault_events=1)


def replica_killed(workdir: Path) -> Outcome:
    """The only replica killed for a few seconds with REDIS_MIN_REPLICAS=1: writes wait,
    then spool, then everything is published once the replica is back."""
    with _sentinel_stack(workdir) as (stack, servers):
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=MAX_CALLS) as load:
            load.wait_calls(400)
            replica = servers.replicas[0]
            primary_port = servers.primary.port
            replica.kill()
            time.sleep(3.0)
            replica.start("--replicaof", "127.0.0.1", str(primary_port))
            servers.wait_replicas(1)
            tally = load.stop()
        spooled = sum(int(p.metric("proxy_records_spooled_total")) for p in stack.proxies)
        title = "Sentinel: the only replica killed 3 s, REDIS_MIN_REPLICAS=1"
        return _finish(stack, servers, title, tally, fault_events=spooled)
