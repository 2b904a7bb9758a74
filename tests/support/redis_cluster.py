"""A private Redis Cluster of three masters (no replicas) on free ports, for the shipper's
cluster test: ``redis-server --cluster-enabled yes`` three times, then
``redis-cli --cluster create``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import redis_server_binary
from tests.support.waiting import wait_until


class RedisCluster:
    """Three cluster-mode redis-servers joined into one cluster covering every slot."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = [free_port() for _ in range(3)]
        # The bus defaults to port + 10000, which may not exist: pick free ones too.
        self.bus_ports = [free_port() for _ in range(3)]
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """Any node; a cluster client discovers the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
            node_dir = self.workdir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self._processes.append(subprocess.Popen(
                [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-port", str(bus_port),
                 "--save", "", "--appendonly", "no", "--dir", str(node_dir),
                 "--logfile", str(node_dir / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port in self.ports:
            wait_for_port(port)
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("no redis-cli binary: run `make test`, which installs one")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
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

    def stop(self) -> None:
        for process in self._processes:
            process.kill()
            process.wait(timeout=10)
        self._processes = []

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
