"""``python -m tests.chaos [--write RELIABILITY.md] [--rounds N] [SCENARIO...]``: run the
chaos scenarios (each ``N`` times, one round after another).

Prints the results table; with ``--write``, writes the whole RELIABILITY.md. Exits 1
when any scenario lost, duplicated or broke a record.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tests.chaos.replicated import REPLICATED_SCENARIOS
from tests.chaos.report import document, table
from tests.chaos.scenarios import SCENARIOS


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--write", type=Path, help="write the results document here")
    parser.add_argument("--rounds", type=int, default=1, help="run every scenario N times")
    parser.add_argument("scenarios", nargs="*", help="keys to run (default: all)")
    args = parser.parse_args()
    every = [*SCENARIOS, *REPLICATED_SCENARIOS]
    chosen = [s for s in every if not args.scenarios or s.key in args.scenarios]
    outcomes = []
    started = time.monotonic()
    for round_number in range(1, args.rounds + 1):
        for scenario in chosen:
            with tempfile.TemporaryDirectory(prefix=f"chaos-{scenario.key}-") as workdir:
                print(f"chaos: {scenario.key} (round {round_number}) ...", file=sys.stderr,
                      flush=True)
                outcome = scenario.run(Path(workdir))
            if outcome.stuck:
                print(f"chaos: {scenario.key} {outcome.stuck}", file=sys.stderr, flush=True)
            if args.rounds > 1:
                outcome = replace(outcome, scenario=f"{outcome.scenario} · round {round_number}")
            outcomes.append(outcome)
    total_s = time.monotonic() - started
    print(table(outcomes))
    if args.write:
        args.write.write_text(document(outcomes, total_s))
        print(f"chaos: wrote {args.write}", file=sys.stderr)
    return 0 if all(o.clean for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
