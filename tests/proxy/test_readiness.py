"""Readiness, liveness and refusing or warning about unsafe configuration at start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from proxy.settings import ProxySettings
from tests.proxy.conftest import StartProxy
from tests.support.redis_server import RedisServer


@pytest.mark.slow
def test_ready_follows_redis_and_answers_in_time_even_when_it_hangs(
    start_proxy: StartProxy, redis_server: RedisServer, tmp_path: Path
) -> None:
    # With a usable spool the proxy stays ready through an outage (test_spool_proxy.py):
    # here the spool's folder is blocked by a file, so only Redis counts.
    blocked = tmp_path / "no-spool"
    blocked.write_text("in the way")
    proxy = start_proxy(READY_TIMEOUT_S="0.5", AUTH_MODE="keys", SPOOL_DIR=str(blocked))
    assert redis_server.pid is not None
    proxy.wait_for_log("no_static_keys")  # said at start...
    assert "WARNING" in proxy.log()  # ...as a warning

    assert httpx.get(f"{proxy.url}/ready").status_code == 200
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        hung = httpx.get(f"{proxy.url}/ready", timeout=10)
        hung_s = time.monotonic() - started
        alive = httpx.get(f"{proxy.url}/health", timeout=10)
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)

    assert hung.status_code == 503 and hung_s < 2.0
    assert hung.json()["error"]["code"] == "not_ready"
    assert set(hung.json()["error"]) == {"message", "type", "code"}
    assert alive.status_code == 200 and alive.json()["ready"] is False
    redis_server.stop()
    assert httpx.get(f"{proxy.url}/ready", timeout=10).status_code == 503
    redis_server.start()
    assert httpx.get(f"{proxy.url}/ready", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "command",
    [["proxy"], ["shipper"], ["shipper", "status"]],
)
def test_a_redis_url_without_a_scheme_is_refused_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, "REDIS_URL": "localhost:6391"}

    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "REDIS_URL" in lines[0] and "redis://" in lines[0], lines
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "events"),
    [
        ({"PROXY_HOST": "0.0.0.0"}, ["open_relay"]),
        ({"PROXY_HOST": "::"}, ["open_relay"]),
        ({"PROXY_HOST": "127.0.0.1"}, []),
        ({"PROXY_HOST": "localhost"}, []),
        ({"PROXY_HOST": "0.0.0.0", "AUTH_MODE": "keys", "PROXY_API_KEYS": "k=u"}, []),
        ({"PROXY_HOST": "127.0.0.1", "AUTH_MODE": "keys"}, ["no_static_keys"]),
    ],
)
def test_unsafe_configurations_are_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], events: list[str]
) -> None:
    for name in ("PROXY_HOST", "AUTH_MODE", "PROXY_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    warnings = ProxySettings(_env_file=None).startup_warnings()  # type: ignore[call-arg]

    assert [event for event, _ in warnings] == events
