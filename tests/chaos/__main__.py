"""``python -m tests.chaos [--write RELIABILITY.md] [--rounds N] [SCENARIO...]``: run the
chaos scenarios (each ``N`` times, one round after another).

Prints the results table; with ``--write``, writes the results into RELIABILITY.md: the
section of each family run (one Redis, failover), keeping the other's. Exits 1 when any
scenario lost, duplicated or broke a record.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tests.chaos.replicated import REPLICATED_SCENARIOS
from tests.chaos.report import FAILOVER, ONE_REDIS, document, section, table
from tests.chaos.scenarios import SCENARIOS
from tests.chaos.verify import Outcome


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--write", type=Path, help="write the results document here")
    parser.add_argument("--rounds", type=int, default=1, help="run every scenario N times")
    parser.add_argument("scenarios", nargs="*", help="keys to run (default: all)")
    args = parser.parse_args()
    every = [*SCENARIOS, *REPLICATED_SCENARIOS]
    chosen = [s for s in every if not args.scenarios or s.key in args.scenarios]
    outcomes: list[Outcome] = []
    seconds = {ONE_REDIS: 0.0, FAILOVER: 0.0}
    family: dict[str, list[Outcome]] = {ONE_REDIS: [], FAILOVER: []}
    for round_number in range(1, args.rounds + 1):
        for scenario in chosen:
            heading = FAILOVER if scenario in REPLICATED_SCENARIOS else ONE_REDIS
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"chaos-{scenario.key}-") as workdir:
                print(f"chaos: {scenario.key} (round {round_number}) ...", file=sys.stderr,
                      flush=True)
                outcome = scenario.run(Path(workdir))
            if outcome.stuck:
                print(f"chaos: {scenario.key} {outcome.stuck}", file=sys.stderr, flush=True)
            if args.rounds > 1:
                outcome = replace(outcome, scenario=f"{outcome.scenario} · round {round_number}")
            outcomes.append(outcome)
            family[heading].append(outcome)
            seconds[heading] += time.monotonic() - started
    print(table(outcomes))
    if args.write:
        command = "make chaos" + (f" ROUNDS={args.rounds}" if args.rounds > 1 else "") + (
            f' SCENARIOS="{" ".join(args.scenarios)}"' if args.scenarios else "")
        existing = args.write.read_text() if args.write.exists() else ""
        written = {heading: section(heading, done, seconds[heading], command)
                   for heading, done in family.items() if done}
        args.write.write_text(document(written, existing))
        print(f"chaos: wrote {args.write}", file=sys.stderr)
    return 0 if all(o.clean for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
