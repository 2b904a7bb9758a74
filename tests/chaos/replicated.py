"""Chaos scenarios on a replicated Redis, with ``REDIS_MIN_REPLICAS=1``.

Behind Sentinel: one primary, one replica, three sentinels, AOF on each node
(``tests/support/redis_sentinel.py``). On a Cluster: three primaries with a replica
each and a one-second node timeout (``tests/support/redis_cluster.py``). One proxy and
one shipper, never restarted. Each scenario ends as ``scenarios._finish`` does, but
asks the current primary whether the stream is empty.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import redis
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster as SyncCluster

from shared.streams import CONSUMER_GROUP, DEFAULT_STREAM
from tests.chaos.diagnosis import describe_cluster, describe_sentinel, describe_stack
from tests.chaos.load import Load, Tally
from tests.chaos.scenarios import Scenario
from tests.chaos.stack import Stack
from tests.chaos.verify import Outcome, judge, wait_until_landed
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_sentinel import MASTER_NAME, ReplicatedRedis

THREADS = 4
MAX_CALLS = 2500
WAIT_TIMEOUT_MS = 300
FROZEN_S = 5.0
"""Longer than the sentinels' down-after time plus an election."""
DRAIN_TIMEOUT_S = 90
"""The stack normally settles within a few seconds of the load's end."""


@contextmanager
def _sentinel_stack(workdir: Path) -> Iterator[tuple[Stack, ReplicatedRedis]]:
    # AOF on every node, as docs/redis.md asks: a killed primary comes back with its data.
    replicated = ReplicatedRedis(workdir / "replicated", replicas=1, sentinels=3, appendonly=True)
    with replicated as servers, Stack(workdir) as stack:
        stack.redis_env = {
            # The host in REDIS_URL is never used: the sentinels name the primary.
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "REDIS_SENTINELS": servers.sentinel_spec,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_MIN_REPLICAS": "1",
            "REDIS_WAIT_TIMEOUT_MS": str(WAIT_TIMEOUT_MS),
        }
        yield stack, servers


def _stream_backlog(client: redis.Redis | SyncCluster, stream: str) -> int:
    length = int(client.xlen(stream))
    try:
        pending = int(client.xpending(stream, CONSUMER_GROUP)["pending"])
    except redis.ResponseError:
        pending = 0
    return length + pending


def _backlog(servers: ReplicatedRedis) -> int:
    try:
        with servers.primary.client() as client:
            return _stream_backlog(client, DEFAULT_STREAM)
    except (redis.RedisError, RuntimeError):
        return -1


def _finish(stack: Stack, servers: ReplicatedRedis | RedisCluster, title: str, tally: Tally,
            fault_events: int) -> Outcome:
    backlog: Callable[[], int]
    topology: Callable[[], str]
    if isinstance(servers, RedisCluster):
        backlog, topology = partial(_cluster_backlog, servers), partial(describe_cluster, servers)
    else:
        backlog, topology = partial(_backlog, servers), partial(describe_sentinel, servers)
    settling = wait_until_landed(
        stack.files, tally.succeeded_ids,
        lambda: backlog() == 0 and stack.spooled_segments() == 0, timeout_s=DRAIN_TIMEOUT_S,
        describe=lambda: f"backlog {backlog()}\n{topology()}\n{describe_stack(stack)}",
    )
    outcome = judge(title, tally.calls, tally.succeeded_ids, settling.seen, settling.drain_s)
    outcome.stuck = settling.stuck
    services = [*stack.proxies, *stack.shippers]
    alive = all(s.process is not None and s.process.poll() is None for s in services)
    restarts = sum(s.starts - 1 for s in services)
    outcome.spooled = sum(int(p.metric("proxy_records_spooled_total")) for p in stack.proxies)
    outcome.ambiguous = sum(int(p.metric("proxy_records_ambiguous_total")) for p in stack.proxies)
    outcome.fault_events = fault_events
    failed = tally.calls - len(tally.succeeded_ids)
    notes = [f"{failed} calls failed" if failed else "", "" if alive else "a service died",
             f"{restarts} restarts" if restarts else "", "not settled" if settling.stuck else ""]
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


CLUSTER_STREAM = "{proxy}:exchanges"
NODE_TIMEOUT_MS = 1000


@contextmanager
def _cluster_stack(workdir: Path) -> Iterator[tuple[Stack, RedisCluster]]:
    with RedisCluster(workdir / "cluster", replicas=1, node_timeout_ms=NODE_TIMEOUT_MS,
                      appendonly=True) as cluster, Stack(workdir) as stack:
        stack.redis_env = {
            "REDIS_URL": cluster.url,
            "REDIS_CLUSTER": "true",
            "REDIS_STREAM": CLUSTER_STREAM,
            "REDIS_MIN_REPLICAS": "1",
            "REDIS_WAIT_TIMEOUT_MS": str(WAIT_TIMEOUT_MS),
        }
        _wait_replica_online(cluster)
        yield stack, cluster


def _cluster_client(cluster: RedisCluster) -> SyncCluster:
    nodes = [ClusterNode("127.0.0.1", port) for port in cluster.ports]
    return SyncCluster(startup_nodes=nodes, socket_timeout=2, socket_connect_timeout=1)


def _stream_primary(cluster: RedisCluster) -> int | None:
    """The port of the node that serves the stream's slot now (None while none answers)."""
    try:
        with _cluster_client(cluster) as client:
            node = client.get_node_from_key(CLUSTER_STREAM)
            with redis.Redis(port=node.port, socket_timeout=1) as primary:
                role = primary.execute_command("ROLE")[0]
            return int(node.port) if role == b"master" else None
    except (redis.RedisError, IndexError):
        return None


def _wait_replica_online(cluster: RedisCluster, not_port: int | None = None,
                         timeout_s: float = 30) -> int:
    """Until the stream's primary (other than ``not_port``) has a replica online; its port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        port = _stream_primary(cluster)
        if port is not None and port != not_port:
            try:
                with redis.Redis(port=port, socket_timeout=1) as primary:
                    info = primary.info("replication")
                if any(isinstance(v, dict) and v.get("state") == "online"
                       for k, v in info.items() if k.startswith("slave")):
                    return port
            except redis.RedisError:
                pass
        time.sleep(0.1)
    raise TimeoutError("the stream's primary has no replica online")


def _wait_failover(cluster: RedisCluster, old_port: int, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        port = _stream_primary(cluster)
        if port is not None and port != old_port:
            return port
        time.sleep(0.1)
    raise TimeoutError("no failover")


def _cluster_backlog(cluster: RedisCluster) -> int:
    try:
        with _cluster_client(cluster) as client:
            return _stream_backlog(client, CLUSTER_STREAM)
    except redis.RedisError:
        return -1


def cluster_primary_killed(workdir: Path) -> Outcome:
    """``kill -9`` of the stream's primary twice under load; it rejoins as a replica."""
    kills = 2
    with _cluster_stack(workdir) as (stack, cluster):
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=MAX_CALLS) as load:
            for kill in range(kills):
                load.wait_calls(400 + kill * 900)
                victim = _wait_replica_online(cluster)
                cluster.process_of(victim).kill()
                _wait_failover(cluster, victim)
                cluster.restart(victim)
                _wait_replica_online(cluster, not_port=victim)
            tally = load.stop()
        title = "Cluster: kill -9 the stream's primary x2, REDIS_MIN_REPLICAS=1"
        return _finish(stack, cluster, title, tally,
                       fault_events=kills)


def cluster_primary_frozen(workdir: Path) -> Outcome:
    """The stream's primary frozen (SIGSTOP) past the node timeout and the failover, then
    resumed: it comes back as a deposed primary with commands waiting in its sockets."""
    with _cluster_stack(workdir) as (stack, cluster):
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=MAX_CALLS) as load:
            load.wait_calls(400)
            victim = _wait_replica_online(cluster)
            process = cluster.process_of(victim)
            process.send_signal(signal.SIGSTOP)
            _wait_failover(cluster, victim)
            time.sleep(1.0)
            process.send_signal(signal.SIGCONT)
            _wait_replica_online(cluster, not_port=victim)
            tally = load.stop()
        title = "Cluster: the stream's primary frozen (SIGSTOP) past the failover, resumed"
        return _finish(stack, cluster, title, tally, fault_events=1)


REPLICATED_SCENARIOS = [
    Scenario("sentinel_primary_killed", sentinel_primary_killed),
    Scenario("sentinel_primary_frozen", sentinel_primary_frozen),
    Scenario("sentinel_replica_killed", replica_killed),
    Scenario("cluster_primary_killed", cluster_primary_killed),
    Scenario("cluster_primary_frozen", cluster_primary_frozen),
]
"""Run by ``make chaos`` after the single-Redis scenarios, and as tests in ``test_replicated``."""
