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
    assert alive.status_code == 200 and alive.json()["status"] == "alive"
    assert alive.json()["redis"]["reachable"] is False
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
        ({"PROXY_HOST": "0.0.0.0", "ALLOW_OPEN_RELAY": "true"}, ["open_relay"]),
        ({"PROXY_HOST": "127.0.0.1"}, []),
        ({"PROXY_HOST": "localhost"}, []),
        ({"PROXY_HOST": "0.0.0.0", "AUTH_MODE": "keys", "PROXY_API_KEYS": "k=u"}, []),
        ({"PROXY_HOST": "127.0.0.1", "AUTH_MODE": "keys"}, ["no_static_keys"]),
    ],
)
def test_unsafe_configurations_are_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], events: list[str]
) -> None:
    for name in ("PROXY_HOST", "PROXY_BIND", "AUTH_MODE", "PROXY_API_KEYS", "ALLOW_OPEN_RELAY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    warnings = ProxySettings(_env_file=None).startup_warnings()  # type: ignore[call-arg]

    assert [event for event, _ in warnings] == events


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PROXY_HOST": "0.0.0.0"}, "PROXY_HOST=0.0.0.0"),
        ({"PROXY_HOST": "::"}, "PROXY_HOST=::"),
        # compose: the proxy listens on 0.0.0.0 inside its network, the LB publishes PROXY_BIND
        ({"PROXY_HOST": "0.0.0.0", "PROXY_BIND": "0.0.0.0"}, "PROXY_BIND=0.0.0.0"),
    ],
)
def test_an_open_relay_is_refused_naming_both_settings(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    """A ``.env`` with AUTH_MODE=none and a public bind: the proxy does not serve."""
    lines = [f"{name}={value}" for name, value in {"AUTH_MODE": "none", **env}.items()]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    clean = {k: v for k, v in os.environ.items()
             if k not in {"PROXY_HOST", "PROXY_BIND", "AUTH_MODE", "ALLOW_OPEN_RELAY"}}
    result = subprocess.run(
        [sys.executable, "-m", "proxy"], cwd=tmp_path, capture_output=True, text=True,
        timeout=30, env={**clean, "OPENAI_API_KEY": "sk-test"},
    )

    assert result.returncode == 2
    message = result.stderr.strip()
    assert "AUTH_MODE=none" in message and named in message and "ALLOW_OPEN_RELAY" in message
    assert "Traceback" not in result.stderr


def test_compose_bind_on_loopback_is_not_an_open_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTH_MODE", "ALLOW_OPEN_RELAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROXY_HOST", "0.0.0.0")
    monkeypatch.setenv("PROXY_BIND", "127.0.0.1")

    assert ProxySettings(_env_file=None).open_relay_refusal() is None  # type: ignore[call-arg]
