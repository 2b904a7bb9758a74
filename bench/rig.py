"""What the proxy benchmarks' targets talk to: nginx as the upstream and a private Redis.

Nothing ships the proxy's stream during a benchmark, so a ``StreamTrimmer`` empties it
every second and Redis's memory stays flat. Whatever is started is also handed to the
caller's ``stoppers``, which ``stop_all`` stops in reverse order.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.nginx import Nginx
from tests.support.redis_server import RedisServer

Stoppers = list[Callable[[], object]]


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass(frozen=True)
class RunClock:
    """When a suite run started and how busy the machine was: its results' first fields."""

    command: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_at_start: list[float] = field(default_factory=_load_average)

    def fields(self) -> dict[str, Any]:
        """The command, start, duration so far and load averages at start and now."""
        return {
            "command": self.command,
            "started": self.started.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(UTC) - self.started).total_seconds(), 1),
            "load_average_at_start": self.load_at_start,
            "load_average_at_end": _load_average(),
        }


class StreamTrimmer(threading.Thread):
    """Empties the proxy's stream every second: nothing ships it during the bench."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self._client = redis.Redis.from_url(url)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self._client.delete("bench:proxy")

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


@dataclass(frozen=True)
class Rig:
    redis_url: str
    upstream_port: int

    @property
    def json_upstream(self) -> str:
        """The canned chat completion's base URL, as ``OPENAI_BASE_URL``."""
        return f"http://127.0.0.1:{self.upstream_port}/v1"


def start_rig(workdir: Path, stoppers: Stoppers, download_bytes: int = 0) -> Rig:
    """Redis with its trimmer, and nginx serving the canned completion and a sparse
    download of ``download_bytes`` (zeros: no disk used)."""
    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    stoppers.append(redis_server.stop)
    trimmer = StreamTrimmer(redis_server.url)
    trimmer.start()
    stoppers.append(trimmer.stop)
    download = workdir / "download.bin"
    with download.open("wb") as handle:
        handle.truncate(download_bytes)
    upstream = Nginx.upstream(workdir / "nginx-upstream", download)
    upstream.start()
    stoppers.append(upstream.stop)
    return Rig(redis_server.url, upstream.port)


def stop_all(stoppers: Stoppers) -> None:
    """Last started, first stopped; a failing stop must not hide the others."""
    for stop in reversed(stoppers):
        try:
            stop()
        except Exception as exc:
            print(f"bench: stop failed: {exc!r}", file=sys.stderr)
