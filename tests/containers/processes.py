"""Run a localized service as a process: start, wait for its own healthcheck, stop like Docker."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.containers.specs import Localized
from tests.support.waiting import wait_until


class ServiceProcess:
    """One service's command; ``stop`` sends the container's stop signal, as ``docker stop``."""

    def __init__(self, name: str, local: Localized, workdir: Path) -> None:
        self.name = name
        self.local = local
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.local.argv, env=self.local.env, cwd=self.workdir,
                stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    def healthy(self) -> bool:
        """The service's own healthcheck command, run as Docker would run it."""
        result = subprocess.run(
            self.local.healthcheck, env=self.local.env, cwd=self.workdir,
            capture_output=True, timeout=10,
        )
        return result.returncode == 0

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        def healthy() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log()}")
            return self.healthy()

        wait_until(healthy, timeout_s, lambda: f"{self.name} to be healthy:\n{self.log()}",
                   interval_s=0.2)

    def stop(self, stop_signal: str = "SIGTERM", grace_s: float = 10.0) -> int | None:
        """Send ``stop_signal``; kill after ``grace_s`` (returns None then), as Docker does."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.Signals[stop_signal])
        try:
            return self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
