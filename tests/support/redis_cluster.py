"""A private Redis Cluster of three masters (with ``replicas=1``, one replica each) on free
ports: ``redis-server --cluster-enabled yes`` per node, then ``redis-cli --cluster create``."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import redis_server_binary
from tests.support.waiting import wait_until


class RedisCluster:
    """Three cluster-mode redis-servers joined into one cluster covering every slot.

    Without persistence by default; ``appendonly=True`` gives every node the AOF
    (``appendfsync everysec``) that docs/redis.md asks of a node that can become primary,
    so a node killed and restarted comes back with its data.
    """

    def __init__(self, workdir: Path, replicas: int = 0, node_timeout_ms: int = 15000,
                 *, appendonly: bool = False) -> None:
        self.workdir = workdir
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.appendonly = appendonly
        nodes = 3 * (1 + replicas)
        self.ports = [free_port() for _ in range(nodes)]
        # The bus defaults to port + 10000, which may not exist: pick free ones too.
        self.bus_ports = [free_port() for _ in range(nodes)]
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """Any node; a cluster client discovers the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def _spawn(self, port: int, bus_port: int) -> subprocess.Popen[bytes]:
        node_dir = self.workdir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-port", str(bus_port),
             "--cluster-node-timeout", str(self.node_timeout_ms),
             "--save", "", "--appendonly", "yes" if self.appendonly else "no",
             "--appendfsync", "everysec", "--dir", str(node_dir),
             "--logfile", str(node_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def restart(self, port: int) -> None:
        """Start the node on ``port`` again after a kill: it rejoins from its nodes.conf."""
        index = self.ports.index(port)
        self._processes[index] = self._spawn(port, self.bus_ports[index])
        wait_for_port(port)

    def start(self) -> None:
        for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
            self._processes.append(self._spawn(port, bus_port))
        for port in self.ports:
            wait_for_port(port)
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("no redis-cli binary: run `make test`, which installs one")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )
        self._wait_until_ok()

    def _wait_until_ok(self, timeout_s: float = 20.0) -> None:

        def ok() -> bool:
            states = []
            for port in self.ports:
                with redis.Redis(port=port) as node:
                    states.append(node.execute_command("CLUSTER", "INFO"))
            return all(b"cluster_state:ok" in state for state in states)

        wait_until(ok, timeout_s, "cluster_state:ok", interval_s=0.1)

    def process_of(self, port: int) -> subprocess.Popen[bytes]:
        """The process of the node on ``port`` (to pause or kill it)."""
        return self._processes[self.ports.index(port)]

    def replica_of(self, primary_port: int) -> int:
        """The port of a replica of the primary on ``primary_port``."""
        with redis.Redis(port=primary_port) as node:
            role = node.execute_command("ROLE")
        return int(role[2][0][1])

    def stop(self) -> None:
        for process in self._processes:
            process.send_signal(signal.SIGCONT)  # a paused node dies too
            process.kill()
            process.wait(timeout=10)
        self._processes = []

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
