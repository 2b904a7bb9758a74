"""The production ``deploy/haproxy.cfg``, run by the real ``haproxy`` with local addresses.

Only addresses change, each by an exact replacement that must match once (so an edit of
the production file that the test does not know about fails loudly instead of drifting):

- Docker's DNS ``127.0.0.11:53`` becomes the test's DNS server (``ServiceDns``);
- the listening ports ``:8000`` and ``:8404`` become free ports on ``127.0.0.1``;
- the replicas' port ``proxy:8000`` becomes the one port every local replica listens on,
  each replica on its own loopback address, as each container has its own address;
- with TLS (``deploy/haproxy-tls.cfg``, loaded after the main file as
  ``deploy/compose.tls.yml`` does), ``:8443`` becomes a free port and the certificate's
  mount point the test's file.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.containers.specs import REPO
from tests.support.ports import free_port, wait_for_port

CONFIG = REPO / "deploy" / "haproxy.cfg"
TLS_CONFIG = REPO / "deploy" / "haproxy-tls.cfg"
CERT_MOUNT = "/usr/local/etc/haproxy/certs/proxy.pem"
BACKEND = "proxies"


def haproxy_binary() -> str:
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if not binary:
        raise RuntimeError("no haproxy binary: run `make test`, which installs Debian's package")
    return binary


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise AssertionError(f"deploy/haproxy*.cfg: expected {old!r} exactly once")
    return text.replace(old, new)


def render_tls(*, listen_port: int, cert: Path) -> str:
    """The TLS frontend with this machine's port and certificate file."""
    text = _replace_once(TLS_CONFIG.read_text(), "bind :8443", f"bind 127.0.0.1:{listen_port}")
    return _replace_once(text, CERT_MOUNT, str(cert))


def render(*, dns_port: int, listen_port: int, stats_port: int, replica_port: int) -> str:
    """The production configuration with this machine's addresses."""
    text = CONFIG.read_text()
    text = _replace_once(text, "127.0.0.11:53", f"127.0.0.1:{dns_port}")
    text = _replace_once(text, "bind :8000", f"bind 127.0.0.1:{listen_port}")
    text = _replace_once(text, "bind :8404", f"bind 127.0.0.1:{stats_port}")
    return _replace_once(text, "proxy:8000", f"proxy:{replica_port}")


class HAProxy:
    """``haproxy -W -db`` (as the official image runs it) on the rendered configuration."""

    def __init__(
        self, workdir: Path, *, dns_port: int, replica_port: int, tls_cert: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.stats_port = free_port()
        self.tls_port = free_port()
        self.config_path = workdir / "haproxy.cfg"
        self.tls_config_path = workdir / "tls.cfg"
        self.log_path = workdir / "haproxy.log"
        self._config = render(
            dns_port=dns_port, listen_port=self.port, stats_port=self.stats_port,
            replica_port=replica_port,
        )
        self._tls_config = (
            render_tls(listen_port=self.tls_port, cert=tls_cert) if tls_cert else None
        )
        self._process: subprocess.Popen[bytes] | None = None

    def config_args(self) -> list[str]:
        """``-f`` for each file, in the order ``deploy/compose.tls.yml`` gives them."""
        files = [self.config_path] + ([self.tls_config_path] if self._tls_config else [])
        return [arg for path in files for arg in ("-f", str(path))]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``haproxy -c``: what HAProxy says of the configuration before it starts."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config)
        if self._tls_config:
            self.tls_config_path.write_text(self._tls_config)
        return subprocess.run(
            [haproxy_binary(), "-c", *self.config_args()],
            capture_output=True, text=True, timeout=30,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HAProxy:
        check = self.check()
        assert check.returncode == 0, check.stdout + check.stderr
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [haproxy_binary(), "-W", "-db", *self.config_args()],
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port)
        return self

    def servers(self) -> dict[str, tuple[str, str]]:
        """``{slot: (address, status)}`` of the backend's filled slots, from the stats page."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
        return {
            row["svname"]: (row["addr"].rpartition(":")[0], row["status"])
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("BACKEND", "FRONTEND")
            and row["addr"]
        }

    def up_addresses(self) -> set[str]:
        return {addr for addr, status in self.servers().values() if status.startswith("UP")}

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
