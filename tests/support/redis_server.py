"""A private ``redis-server`` per test, on a free port, that a test may stop and restart.

The binary is ``$REDIS_SERVER_BIN``, else ``redis-server`` on ``PATH``
(``make test`` installs one when the machine has none).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.support.ports import free_port, wait_for_port


def redis_server_binary() -> str:
    binary = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("no redis-server binary: run `make test`, which installs one")
    return binary


class RedisServer:
    """One redis-server process; ``stop``/``start`` simulate an outage, ``pause`` a hang.

    Without persistence by default; ``appendonly=True`` turns on AOF with
    ``appendfsync everysec`` (the setting docs/outages.md asks for), so data survives a restart.
    """

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id (to SIGSTOP it: a hung Redis), while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec",
                "--dir", str(self.workdir),
                "--logfile", str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        """Kill the server at once (data is lost, as in a crash without persistence)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # a paused server dies too
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def shutdown(self) -> None:
        """Stop the server cleanly (SIGTERM: with AOF on, it writes its data first)."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause``."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
