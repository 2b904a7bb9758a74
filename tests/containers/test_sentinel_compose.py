"""``docker-compose.sentinel.yml``: the Sentinel topology a user can try, checked without an
engine through ``docker compose config`` (the compose binary the tests already use)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.containers.specs import COMPOSE_FILE, REPO, compose_binary


def test_the_sentinel_override_runs_a_primary_a_replica_and_three_sentinels(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [str(compose_binary()), "-f", str(COMPOSE_FILE),
         "-f", str(REPO / "docker-compose.sentinel.yml"),
         "--project-directory", str(tmp_path), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]

    sentinels = [name for name in services if name.startswith("sentinel-")]
    assert len(sentinels) == 3
    assert "--replicaof" in services["redis-replica"]["command"]
    for node in ("redis", "redis-replica"):
        command = services[node]["command"]
        assert command[command.index("--min-replicas-to-write") + 1] == "1"
    for name in ("proxy", "shipper"):
        env = services[name]["environment"]
        assert env["REDIS_SENTINELS"] == ",".join(f"{s}:26379" for s in sorted(sentinels))
        assert env["REDIS_SENTINEL_MASTER"] == "mymaster"
        assert env["REDIS_MIN_REPLICAS"] == "1"
