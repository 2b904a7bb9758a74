"""RELIABILITY.md: a chaos run rewrites the sections of the families it ran, no more."""

from __future__ import annotations

from pathlib import Path

from tests.chaos.report import FAILOVER, INTRO, ONE_REDIS, document, section
from tests.chaos.verify import Outcome


def _outcome(name: str, missing: int = 0) -> Outcome:
    return Outcome(name, calls=10, expected=10, found=10 - missing, missing=missing,
                   duplicated=0, invalid_lines=0, drain_s=0.5)


def test_a_failover_run_keeps_the_one_redis_results() -> None:
    before = document({ONE_REDIS: section(ONE_REDIS, [_outcome("kill a shipper")], 60,
                                          "make chaos")})
    after = document({FAILOVER: section(FAILOVER, [_outcome("sentinel · round 1")], 90,
                                        'make chaos SCENARIOS="sentinel"')}, before)

    assert after.startswith(INTRO)
    assert after.index(ONE_REDIS) < after.index(FAILOVER)
    assert "| kill a shipper |" in after and "| sentinel · round 1 |" in after
    assert 'make chaos SCENARIOS="sentinel"' in after


def test_a_run_replaces_its_own_family_and_says_when_it_was_not_clean() -> None:
    first = document({FAILOVER: section(FAILOVER, [_outcome("old round")], 90, "make chaos")})
    second = document({FAILOVER: section(FAILOVER, [_outcome("new round", missing=1)], 90,
                                         "make chaos")}, first)

    assert "old round" not in second and "| new round |" in second
    assert "NOT all clean" in second
    assert second.count(FAILOVER) == 1


def test_the_file_in_the_repository_has_both_sections() -> None:
    text = (Path(__file__).resolve().parent.parent / "RELIABILITY.md").read_text()

    assert document({}, text) == text
    assert ONE_REDIS in text and FAILOVER in text
