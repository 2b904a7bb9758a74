"""Free TCP ports on the loopback interface for the servers the tests start.

The kernel names a free port, but the server binds it only later (a proxy imports for a
second first), and meanwhile the kernel may name the same port to another process: the
other pytest-xdist worker, or another checkout's tests on the same machine. So every port
handed out is written in a ledger that all test processes share (a file, under a lock),
and no other process is handed it while it is young; a port nothing listens on (a Redis
that is down) is kept from the others the same way.
"""

from __future__ import annotations

import fcntl
import socket
import tempfile
import time
from pathlib import Path

from tests.support.waiting import wait_until

LEDGER = Path(tempfile.gettempdir()) / "openai-log-proxy-test-ports"
HELD_S = 300.0
"""How long a port stays with the process it was handed to: longer than a test may run."""
COMPACT_AT_LINES = 2000
"""The ledger is one appended line a port; past this many, mostly old, it keeps the young."""


def free_port() -> int:
    """A port that nothing listens on and no other test process was handed lately."""
    try:
        ledger = LEDGER.open("a+")
    except OSError:  # another user's ledger: the kernel's word alone, as before
        return _kernel_port()
    with ledger:
        fcntl.flock(ledger, fcntl.LOCK_EX)  # released when the file closes
        ledger.seek(0)
        lines = ledger.read().splitlines()
        now = time.time()
        held = _young(lines, now)
        port = _kernel_port()
        while port in held:
            port = _kernel_port()
        if len(lines) >= COMPACT_AT_LINES and len(held) <= len(lines) // 2:
            ledger.truncate(0)
            ledger.writelines(f"{old} {at}\n" for old, at in held.items())
        ledger.write(f"{port} {now}\n")
    return port


def _kernel_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _young(lines: list[str], now: float) -> dict[int, float]:
    """The ports handed out less than ``HELD_S`` ago (a line torn by a kill is skipped)."""
    held = {}
    for line in lines:
        try:
            port, at = line.split()
            if now - float(at) < HELD_S:
                held[int(port)] = float(at)
        except ValueError:
            continue
    return held


def wait_for_port(port: int, timeout_s: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on ``port``."""

    def listening() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(listening, timeout_s, f"something listening on {host}:{port}", interval_s=0.02)
