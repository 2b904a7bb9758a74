"""``make run``'s script: Ctrl-C stops the stack in order, losing nothing; a service that
dies takes the stack down, says which, and the script exits non-zero."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.terminal import terminal_signals
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)

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


@pytest.fixture
def run_env(
    tmp_path: Path, redis_server: RedisServer, fake_upstream: FakeUpstream
) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "PROXY_HOST"},
        "REDIS_URL": redis_server.url,
        "OPENAI_BASE_URL": fake_upstream.base_url,
        "OPENAI_API_KEY": "sk-run-test",
        "PROXY_PORT": str(free_port()),
        "LOCAL_LOG_DIR": str(tmp_path / "logs"),
    }


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    with (tmp_path / "run.log").open("wb") as output:
        run = subprocess.Popen(
            [str(REPO / "scripts/run.sh")], cwd=tmp_path, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=terminal_signals,
        )
    url = f"http://127.0.0.1:{env['PROXY_PORT']}"

    def healthy() -> bool:
        assert run.poll() is None, "no proxy"
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 30, "no proxy", interval_s=0.1)
    return run, url


def _landed_ids(log_dir: Path) -> list[str]:
    return [
        json.loads(line)["id"]
        for path in log_dir.glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]


@pytest.mark.slow
def test_ctrl_c_stops_the_proxy_first_and_ships_what_is_left(
    tmp_path: Path, run_env: dict[str, str]
) -> None:
    run, url = _start(tmp_path, run_env)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        ids = []
        for _ in range(30):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            ids.append(raw.headers["x-proxy-record-id"])
        os.killpg(run.pid, signal.SIGINT)  # at once: some records are still on their way

        assert run.wait(timeout=60) == 0
        log = (tmp_path / "run.log").read_text()
        order = ["run: stopping the proxy", "proxy_stopped", "run: stopping the shipper",
                 "shipper_stopped"]
        assert [log.index(step) for step in order] == sorted(log.index(s) for s in order)
        assert sorted(_landed_ids(Path(run_env["LOCAL_LOG_DIR"]))) == sorted(ids)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


@pytest.mark.slow
def test_a_dead_proxy_takes_the_stack_down_by_name(
    tmp_path: Path, run_env: dict[str, str]
) -> None:
    run, _ = _start(tmp_path, run_env)
    try:
        proxies = [pid for pid, cmd in _children(run.pid).items() if "-m proxy" in cmd]
        assert len(proxies) == 1
        os.kill(proxies[0], signal.SIGKILL)

        assert run.wait(timeout=30) == 1
        log = (tmp_path / "run.log").read_text()
        assert "run: proxy exited" in log
        port = run_env["PROXY_PORT"]
        assert f"Uvicorn running on http://127.0.0.1:{port}" in log  # local unless asked
        assert "shipper_stopped" in log  # the rest was stopped, not orphaned
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_second_ctrl_c_stops_every_child_in_order(
    tmp_path: Path, run_env: dict[str, str]
) -> None:
    run, url = _start(tmp_path, run_env)
    try:
        children = _children(run.pid)
        # A call the upstream answers slowly: the proxy would let it finish for 30 s.
        slow = subprocess.Popen(
            ["curl", "-s", "-o", "/dev/null", f"{url}/v1/chat/completions",
             "-H", "content-type: application/json", "-d", '{"model": "slow"}'],
        )
        time.sleep(1.0)
        os.killpg(run.pid, signal.SIGINT)
        wait_until(
            lambda: "run: stopping the proxy" in (tmp_path / "run.log").read_text(), 10,
            "the first Ctrl-C to reach the proxy",
        )
        time.sleep(0.5)
        os.killpg(run.pid, signal.SIGINT)  # the second Ctrl-C

        assert run.wait(timeout=25) == 0
        slow.wait(timeout=10)
        log = (tmp_path / "run.log").read_text()
        order = ["run: stopping the proxy now", "proxy_stopped", "run: stopping the shipper",
                 "shipper_stopped"]
        assert [log.index(step) for step in order] == sorted(log.index(s) for s in order)
        # Nothing outlives make run: the port is free again.
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def test_its_own_redis_dying_does_not_stop_the_stack(
    tmp_path: Path, run_env: dict[str, str]
) -> None:
    env = {**run_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    run, url = _start(tmp_path, env)
    try:
        redis_pids = [pid for pid, cmd in _children(run.pid).items() if "redis-server" in cmd]
        assert len(redis_pids) == 1
        os.kill(redis_pids[0], signal.SIGKILL)
        time.sleep(0.5)

        # The proxy keeps answering (its record goes to the spool), and the stack runs on.
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        record_id = raw.headers["x-proxy-record-id"]
        assert run.poll() is None
        # Redis is started again, and the spooled record is shipped.
        wait_until(
            lambda: record_id in _landed_ids(Path(env["LOCAL_LOG_DIR"])), 30,
            lambda: (tmp_path / "run.log").read_text()[-3000:],
        )
        assert "run: redis-server exited" in (tmp_path / "run.log").read_text()
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
