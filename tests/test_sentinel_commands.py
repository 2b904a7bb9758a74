"""The command-line tools behind Sentinel: ``proxy keys`` and ``shipper status`` find the
primary through the sentinels, before and after a failover, without being told its address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.streams import DEFAULT_STREAM, KEYS_ENTRIES, RECORD_FIELD
from tests.support.redis_sentinel import MASTER_NAME, ReplicatedRedis

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_keys_and_status_follow_the_primary_through_a_failover(tmp_path: Path) -> None:
    with ReplicatedRedis(tmp_path / "redis", replicas=1, sentinels=3) as servers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")} | {
            "REDIS_URL": "redis://127.0.0.1:1/0",  # the sentinels say where the primary is
            "REDIS_SENTINELS": servers.sentinel_spec,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_MIN_REPLICAS": "1",
        }
        created = _run("proxy", "keys", "create", "--user", "alice", env=env, cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        with servers.primary.client() as primary:
            assert primary.exists(KEYS_ENTRIES)
            primary.xadd(DEFAULT_STREAM, {RECORD_FIELD: b"{}"})
            primary.execute_command("WAIT", 1, 1000)

        old = servers.primary
        old.kill()
        servers.wait_failover(old.port)

        listed = _run("proxy", "keys", "list", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "alice" in listed.stdout
        status = _run("shipper", "status", "--json", env=env, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["stream_length"] == 1
