"""``make run``'s script when a service dies: the stack goes down, says which, exits non-zero."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.fake_upstream import FakeUpstream
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[1]


def _children(parent: int) -> dict[int, str]:
    """The pids and command lines of ``parent``'s child processes."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found[int(entry.name)] = cmdline
    return found


def test_a_dead_proxy_takes_the_stack_down_by_name(
    tmp_path: Path, redis_server: RedisServer, fake_upstream: FakeUpstream
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROXY_HOST"},
        "REDIS_URL": redis_server.url,
        "OPENAI_BASE_URL": fake_upstream.base_url,
        "OPENAI_API_KEY": "sk-run-test",
        "PROXY_PORT": str(port),
        "LOCAL_LOG_DIR": str(tmp_path / "logs"),
    }
    with (tmp_path / "run.log").open("wb") as output:
        run = subprocess.Popen(
            [str(REPO / "scripts/run.sh")], cwd=tmp_path, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert run.poll() is None and time.monotonic() < deadline, "no proxy"
            time.sleep(0.1)
        proxies = [pid for pid, cmd in _children(run.pid).items() if "-m proxy" in cmd]
        assert len(proxies) == 1
        os.kill(proxies[0], signal.SIGKILL)

        assert run.wait(timeout=30) == 1
        log = (tmp_path / "run.log").read_text()
        assert "run: proxy exited" in log
        assert f"Uvicorn running on http://127.0.0.1:{port}" in log  # local unless asked
        assert "shipper_stopped" in log  # the rest was stopped, not orphaned
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
