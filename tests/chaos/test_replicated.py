"""Failovers behind Sentinel and on a Cluster with REDIS_MIN_REPLICAS=1: every answered
call lands once.

Long (about half a minute each): real redis-server primaries, replicas and sentinels, a
real proxy and shipper under load from the ``openai`` SDK.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.replicated import DRAIN_TIMEOUT_S, REPLICATED_SCENARIOS
from tests.chaos.scenarios import Scenario


# The load and the failovers take half a minute or more on a busy machine: the test's
# time limit leaves room for the scenario's own wait (DRAIN_TIMEOUT_S) to run out first,
# and fail saying what was stuck.
@pytest.mark.timeout(120 + DRAIN_TIMEOUT_S)
@pytest.mark.parametrize(
    "scenario", REPLICATED_SCENARIOS, ids=[s.key for s in REPLICATED_SCENARIOS]
)
def test_a_failover_loses_and_doubles_nothing(scenario: Scenario, tmp_path: Path) -> None:
    outcome = scenario.run(tmp_path)
    print(outcome)

    assert not outcome.stuck, outcome.stuck
    assert outcome.expected > 100, "the load did not run"
    assert outcome.fault_events > 0, "no sign that the fault happened"
    assert outcome.calls == outcome.expected, f"calls failed: {outcome.notes}"
    assert outcome.notes == ""  # no failed call, no dead or restarted service
    assert outcome.missing == 0
    assert outcome.duplicated == 0
    assert outcome.invalid_lines == 0
