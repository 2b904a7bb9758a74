"""``python -m shipper status``: the backlog numbers, as a user reads them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import redis

from shared.streams import CONSUMER_GROUP, RECORD_FIELD, dead_letter_stream
from tests.factories import make_record
from tests.shipper.conftest import STREAM
from tests.support.ports import free_port


def _status(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "shipper", "status", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=30,
    )


def test_status_json_reports_the_backlog(
    shipper_env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    a_minute_ago_ms = int(time.time() * 1000) - 60_000
    for n in range(10):
        record = make_record().to_json()
        redis_client.xadd(STREAM, {RECORD_FIELD: record}, id=f"{a_minute_ago_ms + n}-0")
    redis_client.xgroup_create(STREAM, CONSUMER_GROUP, id="0")
    redis_client.xreadgroup(CONSUMER_GROUP, "shipper-a", {STREAM: ">"}, count=3)
    redis_client.xreadgroup(CONSUMER_GROUP, "shipper-b", {STREAM: ">"}, count=2)
    redis_client.xadd(dead_letter_stream(STREAM), {"reason": "x"})
    redis_client.xadd(dead_letter_stream(STREAM), {"reason": "y"})

    result = _status(shipper_env, tmp_path / "run", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["stream"] == STREAM
    assert status["stream_length"] == 10
    assert status["pending_total"] == 5
    assert status["pending_per_consumer"] == {"shipper-a": 3, "shipper-b": 2}
    assert 59 <= status["oldest_unshipped_age_s"] < 90
    assert status["dead_letter_count"] == 2
    assert status["dead_letter_cut_total"] == 0

    table = _status(shipper_env, tmp_path / "run")
    assert table.returncode == 0
    assert "shipper-a" in table.stdout and "10" in table.stdout


def test_status_of_an_empty_stream(shipper_env: dict[str, str], tmp_path: Path) -> None:
    result = _status(shipper_env, tmp_path / "run", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["stream_length"] == 0 and status["pending_total"] == 0
    assert status["oldest_unshipped_age_s"] is None


def test_status_without_redis_fails_clearly(
    shipper_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**shipper_env, "REDIS_URL": f"redis://:secret@127.0.0.1:{free_port()}/0"}
    result = _status(env, tmp_path / "run", "--json")
    assert result.returncode == 1
    assert "cannot reach Redis" in result.stderr
    assert "secret" not in result.stderr
    assert result.stdout == ""
