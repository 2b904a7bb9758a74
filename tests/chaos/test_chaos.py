"""The chaos scenarios as tests: nothing missing, nothing twice, every line a record.

A publish that got no answer (a hung Redis, a Redis shutting down mid-reply, a machine
so loaded that a reply came after ``PUBLISH_TIMEOUT_S``) may have been applied as well
as spooled: the shipper's per-id check keeps such a record from landing twice, so
duplicates are zero here too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.scenarios import SCENARIOS, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.key for s in SCENARIOS])
def test_every_answered_call_lands_once(scenario: Scenario, tmp_path: Path) -> None:
    outcome = scenario.run(tmp_path)
    print(outcome)

    assert not outcome.stuck, outcome.stuck
    assert outcome.expected > 100, "the load did not run"
    assert outcome.fault_events > 0, "no sign that the fault happened"
    assert outcome.calls == outcome.expected, f"calls failed: {outcome.notes}"
    assert outcome.missing == 0
    assert outcome.invalid_lines == 0
    assert outcome.duplicated == 0
    if scenario.key in ("proxy_killed_with_spool", "proxy_host_lost"):
        assert outcome.spooled == outcome.expected
