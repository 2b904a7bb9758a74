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
    stuck: str = ""
    """Empty when the stack settled; else what was still unsettled at the timeout."""

    @property
    def clean(self) -> bool:
        return (self.missing == 0 and self.duplicated == 0 and self.invalid_lines == 0
                and not self.stuck)


@dataclass
class Settling:
    """How a wait for the stack to settle ended."""

    seen: Landed
    drain_s: float
    stuck: str = ""
    """Empty when it settled; else what was missing, and ``describe()`` at the timeout."""


def wait_until_landed(
    files: Callable[[], list[bytes]],
    expected: Iterable[str],
    settled: Callable[[], bool],
    timeout_s: float = 60,
    describe: Callable[[], str] = lambda: "",
) -> Settling:
    """Poll the files until every expected id is there and ``settled()``, for at most
    ``timeout_s``; ``describe`` is asked only at the timeout, to say what was stuck."""
    wanted = set(expected)
    started = time.monotonic()
    while True:
        seen = count_lines(files())
        landed = wanted <= set(seen.counts)
        if landed and settled():
            return Settling(seen, time.monotonic() - started)
        if time.monotonic() - started > timeout_s:
            missing = sorted(wanted - set(seen.counts))
            stuck = (f"not settled after {timeout_s:.0f} s: {len(missing)} expected ids not "
                     f"in the files {missing[:5]}, settled() {settled()}\n{describe()}")
            return Settling(seen, time.monotonic() - started, stuck)
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
