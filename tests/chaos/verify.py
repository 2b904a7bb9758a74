"""The verdict of a scenario: every succeeded call's record in the files, once, intact."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Landed:
    """What the log files hold: how often each record id appears, and broken lines."""

    counts: Counter[str]
    invalid_lines: int


def count_lines(files: Iterable[bytes]) -> Landed:
    """Count the ids in the files' contents; a line that is not a JSON record is invalid."""
    counts: Counter[str] = Counter()
    invalid = 0
    for content in files:
        for line in content.splitlines():
            try:
                record = json.loads(line)
                counts[record["id"]] += 1
            except (ValueError, KeyError, TypeError):
                invalid += 1
    return Landed(counts, invalid)


def local_files(log_dir: Path) -> list[bytes]:
    """The contents of every ``*.jsonl`` file in ``log_dir`` (none while it is unusable)."""
    if not log_dir.is_dir():
        return []
    return [path.read_bytes() for path in sorted(log_dir.glob("*.jsonl"))]


@dataclass
class Outcome:
    """One row of RELIABILITY.md."""

    scenario: str
    calls: int
    expected: int
    found: int
    missing: int
    duplicated: int
    invalid_lines: int
    drain_s: float
    spooled: int = 0
    ambiguous: int = 0
    fault_events: int = 0
    """Evidence that the fault happened (what it counts is the scenario's)."""
    notes: str = ""

    @property
    def clean(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.invalid_lines == 0


def wait_until_landed(
    files: Callable[[], list[bytes]],
    expected: Iterable[str],
    settled: Callable[[], bool],
    timeout_s: float = 60,
) -> tuple[Landed, float]:
    """Poll the files until every expected id is there and ``settled()``; the time it took."""
    wanted = set(expected)
    started = time.monotonic()
    while True:
        seen = count_lines(files())
        if wanted <= set(seen.counts) and settled():
            return seen, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            return seen, time.monotonic() - started
        time.sleep(0.1)


def judge(
    scenario: str, calls: int, succeeded: list[str], seen: Landed, drain_s: float
) -> Outcome:
    """Compare the ids of calls that succeeded with the ids in the files."""
    wanted = set(succeeded)
    found = wanted & set(seen.counts)
    duplicated = sum(count - 1 for count in seen.counts.values() if count > 1)
    return Outcome(
        scenario=scenario,
        calls=calls,
        expected=len(wanted),
        found=len(found),
        missing=len(wanted - found),
        duplicated=duplicated,
        invalid_lines=seen.invalid_lines,
        drain_s=round(drain_s, 1),
    )
