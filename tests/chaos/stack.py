"""A whole stack of real processes for one chaos scenario, on 127.0.0.1 only.

Its own ``redis-server`` (AOF on, ``appendfsync everysec``, as docs/outages.md asks), the
fake OpenAI upstream, proxies (``python -m proxy``) and shippers (``python -m shipper``)
writing to a local folder. Every process can be killed, stopped and started again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import redis
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from shared.spool_format import segment_paths
from shared.streams import CONSUMER_GROUP, DEFAULT_STREAM
from tests.chaos.verify import local_files
from tests.support.azurite import Azurite
from tests.support.fake_upstream import FakeUpstream
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
AZURE_CONTAINER = "chaos-logs"
_OWN_PREFIXES = ("OPENAI_", "PROXY_", "REDIS_", "AUTH_", "SPOOL_", "SHIPPER_", "LOCAL_", "AZURE_",
                 "STORAGE_", "PUBLISH_", "LOG_")


@dataclass
class Service:
    """One service process; ``start`` again after a kill runs a new one on the same port."""

    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1
        if self.port is not None:
            self._wait_ready()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 30) -> int | None:
        """SIGTERM, as an orchestrator stops a service; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def events(self, name: str) -> int:
        """How many times this service logged the event ``name`` (LOG_FORMAT=json)."""
        count = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                try:
                    count += json.loads(line).get("event") == name
                except ValueError:
                    pass
        return count

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return 0.0

    def _wait_ready(self) -> None:
        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_path.read_text()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 30, lambda: f"{self.name} healthy:\n{self.log_path.read_text()}")


class Stack:
    """Redis, the fake upstream, and any number of proxies and shippers; a context manager."""

    def __init__(self, workdir: Path, storage: Literal["local", "azure"] = "local") -> None:
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.spool_dir = workdir / "spool"
        self.redis = RedisServer(workdir / "redis", appendonly=True)
        self.upstream = FakeUpstream()
        self.azurite = Azurite(workdir / "azurite", persistent=True) if storage == "azure" else None
        self.proxies: list[Service] = []
        self.shippers: list[Service] = []
        self.redis_env: dict[str, str] = {}
        """Overrides for every service started from now on (another Redis topology)."""

    def __enter__(self) -> Stack:
        self.redis.start()
        self.upstream.start()
        if self.azurite is not None:
            self.azurite.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for service in [*self.proxies, *self.shippers]:
            service.kill()
        self.upstream.stop()
        self.redis.stop()
        if self.azurite is not None:
            self.azurite.stop()

    def files(self) -> list[bytes]:
        """The contents of every JSONL file the shippers wrote, local or in the container."""
        if self.azurite is None:
            return local_files(self.log_dir)
        service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        container = service.get_container_client(AZURE_CONTAINER)
        try:
            names = [b.name for b in container.list_blobs() if b.name.endswith(".jsonl")]
            return [container.download_blob(name).readall() for name in sorted(names)]
        except ResourceNotFoundError:
            return []
        finally:
            service.close()

    def env(self, **overrides: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        base.update(
            REDIS_URL=self.redis.url,
            OPENAI_BASE_URL=self.upstream.base_url,
            OPENAI_API_KEY="sk-chaos-upstream",
            STORAGE_TYPE="local",
            LOCAL_LOG_DIR=str(self.log_dir),
            SPOOL_DIR=str(self.spool_dir),
            LOG_FORMAT="json",
            REDIS_TIMEOUT_S="1",
            SPOOL_DRAIN_INTERVAL_S="0.2",
            SHIPPER_BLOCK_MS="200",
            SHIPPER_CLAIM_IDLE_MS="1000",
            SHIPPER_RETRY_MAX_S="0.5",
        )
        if self.azurite is not None:
            base.update(
                STORAGE_TYPE="azure",
                AZURE_STORAGE_CONNECTION_STRING=self.azurite.connection_string,
                AZURE_STORAGE_CONTAINER=AZURE_CONTAINER,
            )
        base.update(self.redis_env)
        base.update(overrides)
        return base

    def add_proxy(self) -> Service:
        port = free_port()
        env = self.env(PROXY_HOST="127.0.0.1", PROXY_PORT=str(port))
        name = f"proxy-{len(self.proxies)}"
        service = Service(name, [sys.executable, "-m", "proxy"], env, self.workdir / name, port)
        self.proxies.append(service)
        service.start()
        return service

    def add_shipper(self) -> Service:
        name = f"shipper-{len(self.shippers)}"
        env = self.env(SHIPPER_METRICS_PORT=str(free_port()))
        service = Service(name, [sys.executable, "-m", "shipper"], env, self.workdir / name)
        self.shippers.append(service)
        service.start()
        return service

    def backlog(self) -> int:
        """Stream entries not yet shipped; -1 while Redis does not answer (or loads its AOF)."""
        client = redis.Redis.from_url(self.redis.url, socket_timeout=2)
        try:
            length = int(client.xlen(DEFAULT_STREAM))
            try:
                pending = int(client.xpending(DEFAULT_STREAM, CONSUMER_GROUP)["pending"])
            except redis.ResponseError:
                pending = 0
            return length + pending
        except redis.RedisError:
            return -1
        finally:
            client.close()

    def backlog_when_up(self, timeout_s: float = 30) -> int:
        """``backlog`` once Redis answers again (after a restart it first loads its AOF)."""

        def answered() -> list[int]:
            count = self.backlog()
            return [count] if count >= 0 else []

        with contextlib.suppress(AssertionError):
            return wait_until(answered, timeout_s)[0]
        return -1

    def spooled_segments(self) -> int:
        return len(segment_paths(self.spool_dir))
