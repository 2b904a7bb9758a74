"""The common Redis settings: Sentinel addresses, WAIT, and what excludes what."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.replication import ReplicaWait
from shared.settings import CommonSettings


def test_sentinels_and_wait_are_read_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "10.0.0.1:26379, sentinel-b:26380,[::1]:26381")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "logs")
    monkeypatch.setenv("REDIS_MIN_REPLICAS", "1")
    monkeypatch.setenv("REDIS_WAIT_TIMEOUT_MS", "250")

    settings = CommonSettings(_env_file=None)

    assert settings.sentinel_addresses == [
        ("10.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26381)
    ]
    assert settings.redis_sentinel_master == "logs"
    assert settings.replica_wait == ReplicaWait(1, 250)


def test_the_default_waits_for_nothing() -> None:
    wait = CommonSettings(_env_file=None).replica_wait

    assert not wait.enabled and wait.timeout_s == 0


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_SENTINELS": "sentinel-a"},
        {"REDIS_SENTINELS": "sentinel-a:port"},
        {"REDIS_WAIT_TIMEOUT_MS": "0"},  # WAIT n 0 would block for ever
        {"REDIS_SENTINELS": "a:26379", "REDIS_CLUSTER": "true", "REDIS_STREAM": "{p}:x"},
    ],
)
def test_a_wrong_redis_topology_is_refused_at_start(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        CommonSettings(_env_file=None)
