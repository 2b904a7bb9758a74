"""``python -m proxy keys`` against a real redis-server, with two real proxy replicas.

A key created through the CLI is accepted by both replicas within seconds, a revoked key
is refused by both, both keep their last known keys through a Redis outage, and no key is
ever held in clear: not in Redis, not in a record, not in any file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
import redis

from shared.streams import KEYS_LAST_USED
from tests.proxy.conftest import RunningProxy, StartProxy, record_for
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

STATIC_KEY = "pk-static-operator-key-31c9e0"
PROPAGATION_S = 10.0
"""Replicas poll every second (the default); the margin is for a loaded CI machine."""


def keys_cli(redis_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "PROXY_"))}
    env["REDIS_URL"] = redis_url
    env["REDIS_TIMEOUT_S"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "proxy", "keys", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def status(proxy: RunningProxy, key: str) -> int:
    """The status of ``GET /v1/models`` with ``key``: 200 accepted, 401 refused."""
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{proxy.base_url}/models", headers=headers, timeout=10).status_code


def eventually(check: Callable[[], bool], timeout_s: float = PROPAGATION_S) -> None:
    wait_until(check, timeout_s, interval_s=0.1)


def redis_contents(redis_url: str) -> bytes:
    """Every key and value in Redis, serialized (``DUMP``), as one blob to search."""
    client = redis.Redis.from_url(redis_url)
    try:
        blob = b""
        for name in client.scan_iter():
            blob += name + (client.dump(name) or b"")
        return blob
    finally:
        client.close()


def files_containing(root: Path, secret: str) -> list[Path]:
    return [
        path for path in root.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()
    ]


@pytest.mark.slow
def test_keys_from_the_cli_reach_both_replicas_and_survive_an_outage(
    start_proxy: StartProxy, redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    replicas = [
        start_proxy(AUTH_MODE="keys", PROXY_API_KEYS=f"{STATIC_KEY}=operator") for _ in range(2)
    ]
    created = keys_cli(redis_url, "create", "--user", "alice", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    alice = created.stdout.splitlines()[-1]
    assert created.stdout == f"{alice}\n" and alice.startswith("pk-")
    bob, carol = (
        keys_cli(redis_url, "create", "--user", user, cwd=tmp_path).stdout.strip()
        for user in ("bob", "carol")
    )

    for proxy in replicas:
        eventually(lambda p=proxy: all(status(p, k) == 200 for k in (alice, bob, carol)))  # type: ignore[misc]
        assert status(proxy, STATIC_KEY) == 200  # PROXY_API_KEYS still works beside Redis
        assert status(proxy, "pk-000000000000-unknown") == 401

    client = openai.OpenAI(base_url=replicas[1].base_url, api_key=alice, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    entry = record_for(redis_url, raw.headers["x-proxy-record-id"])
    assert entry.record.user_id == "alice" and alice not in entry.raw.decode()

    listed = keys_cli(redis_url, "list", cwd=tmp_path)
    assert "alice" in listed.stdout and "bob" in listed.stdout
    assert alice not in listed.stdout and bob not in listed.stdout

    def last_used(key_id: str) -> bytes | None:
        client = redis.Redis.from_url(redis_url)
        try:
            return client.hget(KEYS_LAST_USED, key_id)  # type: ignore[return-value]
        finally:
            client.close()

    # Replicas write "last used" in batches, shortly after the call.
    alice_id = alice.split("-")[1]
    eventually(lambda: last_used(alice_id) is not None)
    rows = json.loads(keys_cli(redis_url, "list", "--json", cwd=tmp_path).stdout)
    [alice_row] = [row for row in rows if row["user_id"] == "alice"]
    assert alice_row["key_id"] == alice_id and alice.startswith(alice_row["prefix"])
    assert alice_row["last_used_at"] is not None and alice_row["created_at"] is not None

    # Revoke alice by the id `list` shows, carol by her key itself: both replicas refuse
    # them within seconds.
    revoked = keys_cli(redis_url, "revoke", alice_id, cwd=tmp_path)
    assert revoked.returncode == 0 and "alice" in revoked.stdout
    revoked = keys_cli(redis_url, "revoke", carol, cwd=tmp_path)
    assert revoked.returncode == 0 and "carol" in revoked.stdout
    for proxy in replicas:
        eventually(lambda p=proxy: status(p, alice) == status(p, carol) == 401)  # type: ignore[misc]
        assert status(proxy, bob) == 200
    again = keys_cli(redis_url, "revoke", carol, cwd=tmp_path)
    assert again.returncode == 1 and carol not in again.stderr

    # Nothing holds a key in clear: Redis, the records, the logs, any file.
    contents = redis_contents(redis_url)
    for key in (alice, bob, carol, STATIC_KEY):
        assert key.encode() not in contents
        assert files_containing(tmp_path, key) == []

    # Redis goes away: the last known keys keep working, the revoked one stays revoked.
    redis_server.stop()
    time.sleep(1.5)  # more than one refresh interval
    for proxy in replicas:
        assert status(proxy, bob) == 200
        assert status(proxy, alice) == status(proxy, carol) == 401
        assert status(proxy, STATIC_KEY) == 200


def test_bad_or_unreachable_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = keys_cli("localhost:6391", "list", cwd=tmp_path)
    down = keys_cli("redis://user:hunter2@127.0.0.1:1/0", "create", "--user", "x", cwd=tmp_path)

    for result in (bad, down):
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "REDIS_URL" in bad.stderr
    assert "unreachable" in down.stderr and "hunter2" not in down.stderr
