"""The shipper's metrics and health port, on a real ``python -m shipper`` and redis-server."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import make_record
from tests.shipper.conftest import (
    Publish,
    make_unusable,
    make_usable,
    shipped_ids,
    start_shipper,
    stream_length,
)
from tests.support.ports import free_port, wait_for_port
from tests.support.waiting import wait_until


def _samples(base: str) -> dict[str, float]:
    """``name{labels}`` -> value, from one scrape."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def _retries(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("shipper_storage_retries_total{"))


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_metrics_and_readiness_follow_a_storage_outage(
    shipper_env: dict[str, str], publish: Publish, redis_client: redis.Redis, log_dir: Path,
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    make_unusable(log_dir)
    records = [make_record(user_id=f"u{i % 2}") for i in range(30)]
    publish([*records, b"not json"])
    env = {**shipper_env, "SHIPPER_METRICS_PORT": str(port),
           "SHIPPER_METRICS_HOST": "127.0.0.1", "SHIPPER_READY_FAILING_S": "1"}
    shipper = start_shipper(env, tmp_path / "cwd", tmp_path / "shipper.log")
    try:
        wait_for_port(port)
        assert httpx.get(f"{base}/health").status_code == 200

        # Storage down: retries are counted by kind, nothing ships, and past the
        # threshold the shipper says it is not ready.
        wait_until(lambda: httpx.get(f"{base}/ready").status_code == 503, 20, "unready")
        ready = httpx.get(f"{base}/ready").json()
        # Past the 1 s threshold; the body rounds to 0.1 s, so just past it reads 1.0.
        assert ready["status"] == "unready" and ready["storage_failing_s"] >= 1
        # Liveness in its own words: alive, though not ready.
        alive = httpx.get(f"{base}/health")
        assert alive.status_code == 200 and alive.json()["status"] == "alive"
        assert alive.json()["storage_failing_s"] >= 1
        down = _samples(base)
        assert _retries(down) >= 1
        assert down["shipper_records_shipped_total"] == 0
        assert down["shipper_stream_backlog_entries"] == 31
        assert down["shipper_oldest_unshipped_age_seconds"] > 0
        assert down["shipper_redis_up"] == 1
        assert down["shipper_storage_failing_seconds"] > 1

        # Storage back: everything ships, the backlog empties, ready again.
        make_usable(log_dir)
        wait_until(lambda: stream_length(redis_client) == 0, 20, "the backlog shipped")
        wait_until(lambda: httpx.get(f"{base}/ready").status_code == 200, 10, "ready again")
        up = _samples(base)
        shipped_bytes = sum(p.stat().st_size for p in log_dir.glob("*.jsonl"))
        assert up["shipper_records_shipped_total"] == 30
        assert up["shipper_bytes_shipped_total"] == shipped_bytes
        assert up["shipper_batch_duration_seconds_count"] >= 1
        assert up["shipper_stream_backlog_entries"] == 0
        assert up["shipper_dead_letters_total"] == 1
        assert up["shipper_dead_letter_entries"] == 1
        assert up["shipper_oldest_unshipped_age_seconds"] == 0
        assert up["shipper_storage_failing_seconds"] == 0
        assert _retries(up) >= _retries(down)
    finally:
        _stop(shipper)
    assert sorted(shipped_ids(log_dir)) == sorted(record.id for record in records)


def test_a_port_in_use_is_logged_and_shipping_goes_on(
    shipper_env: dict[str, str], publish: Publish, redis_client: redis.Redis, log_dir: Path,
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        records = [make_record() for _ in range(5)]
        publish(records)
        log = tmp_path / "shipper.log"
        env = {**shipper_env, "SHIPPER_METRICS_PORT": str(port),
               "SHIPPER_METRICS_HOST": "127.0.0.1"}
        shipper = start_shipper(env, tmp_path / "cwd", log)
        try:
            wait_until(lambda: stream_length(redis_client) == 0, 20, "shipping without telemetry")
        finally:
            _stop(shipper)
    assert '"event": "telemetry_unavailable"' in log.read_text()
    assert sorted(shipped_ids(log_dir)) == sorted(record.id for record in records)
