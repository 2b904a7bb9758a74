"""Failovers behind Sentinel and on a Cluster with REDIS_MIN_REPLICAS=1: every answered
call lands once.

Long (about half a minute each): real redis-server primaries, replicas and sentinels, a
real proxy and shipper under load from the ``openai`` SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.replicated import (
    cluster_primary_frozen,
    cluster_primary_killed,
    replica_killed,
    sentinel_primary_frozen,
    sentinel_primary_killed,
)
from tests.chaos.verify import Outcome

SCENARIOS: list[Callable[[Path], Outcome]] = [
    sentinel_primary_killed,
    sentinel_primary_frozen,
    replica_killed,
    cluster_primary_killed,
    cluster_primary_frozen,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_a_failover_loses_and_doubles_nothing(
    scenario: Callable[[Path], Outcome], tmp_path: Path
) -> None:
    outcome = scenario(tmp_path)
    print(outcome)

    assert outcome.expected > 100, "the load did not run"
    assert outcome.fault_events > 0, "no sign that the fault happened"
    assert outcome.calls == outcome.expected, f"calls failed: {outcome.notes}"
    assert outcome.notes == ""  # no failed call, no dead or restarted service
    assert outcome.missing == 0
    assert outcome.duplicated == 0
    assert outcome.invalid_lines == 0
