"""RELIABILITY.md: the results table of a chaos run (``make chaos`` writes it)."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime

from tests.chaos.verify import Outcome

_COLUMNS = (
    "scenario", "calls made", "records expected", "found", "missing", "duplicated",
    "invalid lines", "time to drain (s)", "spooled", "ambiguous", "notes",
)

INTRO = """\
# Reliability: the chaos suite's results

Each scenario runs the real services as processes on 127.0.0.1: its own `redis-server`
(AOF on, `appendfsync everysec`), the proxy (`python -m proxy`), shippers
(`python -m shipper`) writing local JSONL files, and the fake OpenAI upstream of
`tests/support/`. Clients call the proxy with the official `openai` SDK (four threads,
every fifth call streamed) while one fault is injected. Then the set of record ids in
the files is compared with the `X-Proxy-Record-Id` of every call that succeeded.

- **records expected**: calls that succeeded; **found**: of those, ids present in the
  files; **missing**: expected but absent; **duplicated**: extra copies of any id;
  **invalid lines**: lines that are not one JSON record.
- **time to drain**: from the end of the load until every expected record is in a file,
  the stream is empty, nothing is pending and the spool folder is empty.
- **spooled**: records the proxy wrote to its spool; **ambiguous**: publishes that got
  no answer — timed out, or the connection closed before the reply (spooled anyway;
  Redis may have applied them too, so only the shipper's per-id check can keep them
  from landing twice).

Regenerate with `make chaos` (this file) or run the same scenarios as tests with
`make test` / `pytest tests/chaos`. The spool's protocol, and what a `kill -9` or the
Redis settings can still lose, are in [docs/outages.md](docs/outages.md).
"""


def table(outcomes: Sequence[Outcome]) -> str:
    """The results as a Markdown table."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for o in outcomes:
        cells = (
            o.scenario, o.calls, o.expected, o.found, o.missing, o.duplicated,
            o.invalid_lines, f"{o.drain_s:.1f}", o.spooled, o.ambiguous, o.notes,
        )
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


ONE_REDIS = "## One Redis"
FAILOVER = "## Failover rounds (Redis with replicas)"
_FAILOVER_INTRO = """\
The failover scenarios of `tests/chaos/replicated.py`: Sentinel (one primary, one
replica, three sentinels) and Cluster (three primaries, three replicas), every node with
the AOF that [docs/redis.md](docs/redis.md) asks for, the services with
`REDIS_MIN_REPLICAS=1`. What `WAIT` changes is in docs/redis.md.
"""


def section(heading: str, outcomes: Sequence[Outcome], total_s: float, command: str) -> str:
    """One family's results: when, where, the command, the verdict and the table."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    verdict = "every scenario clean" if all(o.clean for o in outcomes) else "NOT all clean"
    intro = _FAILOVER_INTRO + "\n" if heading == FAILOVER else ""
    return (
        f"{heading}\n\n{intro}{when} on {machine}, `{command}`: {len(outcomes)} scenarios "
        f"in {total_s:.0f} s; {verdict}.\n\n{table(outcomes)}\n"
    )


def document(sections: dict[str, str], existing: str = "") -> str:
    """RELIABILITY.md with ``sections`` (heading to text) written and the other sections
    of ``existing`` kept, so a run of some scenarios leaves the others' results alone."""
    kept: dict[str, str] = {}
    for part in existing.split("\n## ")[1:]:
        heading = "## " + part.split("\n", 1)[0]
        kept[heading] = "## " + part.rstrip("\n") + "\n"
    merged = {heading: kept.get(heading) for heading in (ONE_REDIS, FAILOVER)}
    merged |= sections
    return INTRO + "".join("\n" + text for text in merged.values() if text)
