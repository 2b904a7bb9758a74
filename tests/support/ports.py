"""Free TCP ports on the loopback interface for the servers the tests start."""

from __future__ import annotations

import socket

from tests.support.waiting import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on ``port``."""

    def listening() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(listening, timeout_s, f"something listening on {host}:{port}", interval_s=0.02)
