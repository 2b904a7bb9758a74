"""A private replicated Redis on free ports: a primary, replicas and (optionally) sentinels.

Real ``redis-server`` processes (``--replicaof`` for the replicas, ``--sentinel`` for the
sentinels), so failovers happen as they do in production, only faster: a sentinel calls
a primary down after ``DOWN_AFTER_MS``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import redis_server_binary

MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


class PortTaken(RuntimeError):
    """A port picked for a node was taken by another process before the node bound it."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} was taken before redis-server could bind it")


class Node:
    """One ``redis-server`` on its own port; ``start`` again after a kill reuses the port
    (and, with ``appendonly``, the data in its folder)."""

    def __init__(self, workdir: Path, name: str, *, appendonly: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir / name
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *more: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes" if self.appendonly else "no",
             "--appendfsync", "everysec", "--dir", str(self.workdir),
             "--logfile", str(self.workdir / "redis.log"), *more],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.wait_serving()

    def wait_serving(self) -> None:
        """Until this node's own process answers on its port: ports are picked ahead of
        time, and another process may have taken one since (``PortTaken``)."""
        assert self.process is not None
        wait_for_port(self.port)
        try:
            with self.client() as client:
                pid = int(client.info("server")["process_id"])
        except redis.RedisError as exc:
            raise PortTaken(self.port) from exc
        if pid != self.process.pid:
            raise PortTaken(self.port)

    def kill(self) -> None:
        """SIGKILL (``kill -9``): nothing is handed over; what Redis wrote to its AOF stays."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def role(self) -> str:
        with self.client() as client:
            return str(client.execute_command("ROLE")[0], "ascii")


class ReplicatedRedis:
    """A primary and ``replicas`` replicas; with ``sentinels`` > 0, sentinels watch them.

    Without persistence by default. ``appendonly=True`` gives every node the AOF that
    docs/redis.md asks of every node that can become primary: a node killed and started
    again comes back with its data. Without it, it comes back empty, and a second
    failover before its first sync completes (Sentinel promotes such a replica) makes the
    empty node the primary: everything the old one held is gone, which no client can undo.
    """

    def __init__(
        self, workdir: Path, *, replicas: int = 1, sentinels: int = 0, appendonly: bool = False
    ) -> None:
        self.workdir = workdir
        self.nodes = [
            Node(workdir, f"node{n}", appendonly=appendonly) for n in range(1 + replicas)
        ]
        self.sentinels = [Node(workdir, f"sentinel{n}") for n in range(sentinels)]

    @property
    def primary(self) -> Node:
        """The node that is primary now (asked of the nodes themselves)."""
        for node in self.nodes:
            if node.process is not None:
                try:
                    if node.role() == "master" and self._has_replicas_or_alone(node):
                        return node
                except redis.RedisError:
                    continue
        raise RuntimeError("no primary")

    @property
    def replicas(self) -> list[Node]:
        primary = self.primary
        return [node for node in self.nodes if node is not primary]

    @property
    def url(self) -> str:
        """The primary's URL, for a client that does not use Sentinel."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def sentinel_spec(self) -> str:
        """``REDIS_SENTINELS``."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)

    def start(self) -> None:
        first, *rest = self.nodes
        first.start()
        for node in rest:
            node.start("--replicaof", "127.0.0.1", str(first.port))
        self.wait_replicas(len(rest))
        for sentinel in self.sentinels:
            sentinel.workdir.mkdir(parents=True, exist_ok=True)
            conf = sentinel.workdir / "sentinel.conf"
            conf.write_text(
                f"port {sentinel.port}\nbind 127.0.0.1\ndir {sentinel.workdir}\n"
                f"logfile {sentinel.workdir / 'sentinel.log'}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {first.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            sentinel.process = subprocess.Popen(
                [redis_server_binary(), str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            sentinel.wait_serving()
        if self.sentinels:
            self.wait_sentinels_agree(first.port)

    def stop(self) -> None:
        for node in [*self.sentinels, *self.nodes]:
            node.kill()

    def wait_replicas(self, count: int, timeout_s: float = 20) -> None:
        """Until the primary has ``count`` replicas online and caught up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with self.primary.client() as client:
                    info = client.info("replication")
                online = [v for k, v in info.items() if k.startswith("slave") and
                          isinstance(v, dict) and v.get("state") == "online"]
                if len(online) >= count:
                    return
            except (redis.RedisError, RuntimeError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"fewer than {count} replicas online")

    def sentinel_master_port(self) -> int | None:
        """The primary's port as the first sentinel that answers sees it."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    address = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME
                    )
                return int(address[1])
            except (redis.RedisError, TypeError):
                continue
        return None

    def wait_sentinels_agree(self, port: int, timeout_s: float = 20) -> None:
        """Until every sentinel names ``port`` as the primary and knows the others."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            agreed = 0
            for sentinel in self.sentinels:
                try:
                    with sentinel.client() as client:
                        master = client.sentinel_master(MASTER_NAME)
                    others = int(master["num-other-sentinels"])
                    agreed += int(master["port"]) == port and others == len(self.sentinels) - 1
                except (redis.RedisError, KeyError):
                    pass
            if agreed == len(self.sentinels):
                return
            time.sleep(0.1)
        raise TimeoutError("the sentinels did not agree on the primary")

    def wait_failover(self, old_port: int, timeout_s: float = 30) -> int:
        """Until the sentinels name a primary other than ``old_port``; its port."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            port = self.sentinel_master_port()
            if port is not None and port != old_port:
                node = next(n for n in self.nodes if n.port == port)
                if node.process is not None and node.role() == "master":
                    return port
            time.sleep(0.1)
        raise TimeoutError("no failover")

    def _has_replicas_or_alone(self, node: Node) -> bool:
        # A restarted old primary says "master" until the sentinels convert it: not it.
        if not self.sentinels:
            return True
        port = self.sentinel_master_port()
        return port is None or port == node.port

    def __enter__(self) -> ReplicatedRedis:
        for attempt in range(3):
            try:
                self.start()
                return self
            except BaseException as exc:
                self.stop()  # nothing left running behind a failed start
                if not isinstance(exc, PortTaken) or attempt == 2:
                    raise
                for node in [*self.nodes, *self.sentinels]:
                    node.port = free_port()
        raise AssertionError("unreachable")

    def __exit__(self, *exc: object) -> None:
        self.stop()
