"""``python -m bench [--suite shipper|memory|scrub|proxy|explorer|floor] [--quick]``: benchmarks.

The shipper suite (``bench/shipper_bench.py``) measures shipping from the stream to
files; the memory suite (``bench/proxy_memory.py``) the proxy's memory while 1 GiB goes
up and comes down; the proxy suite (``bench/proxy_bench.py``) compares this proxy with a
direct call, nginx and LiteLLM, and writes ``BENCHMARKS.md``; the scrub suite
(``bench/proxy_scrub.py``) times scrubbing a 1 MB record against 1,000 secrets; the
explorer suite (``bench/explorer_bench.py``) queries 1,000,000 generated records; the
floor suite (``bench/versus.py``) measures only the proxy against the floor, in turn, for
A/B runs. Each writes its table under ``bench/results/``. Without ``--suite``, all run but
the floor suite: the proxy suite already ends with the same measurement.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import shipper_bench

SUITES = ("shipper", "memory", "scrub", "proxy", "explorer", "floor")
DEFAULT_SUITES = SUITES[:-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--suite", choices=SUITES, action="append", help="only this suite (repeatable)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs: a smoke test, not figures to quote"
    )
    parser.add_argument(
        "--no-litellm", action="store_true", help="proxy suite: leave LiteLLM out"
    )
    parser.add_argument(
        "--storage",
        choices=shipper_bench.STORAGES,
        action="append",
        help="shipper suite: only this storage (repeatable; default: all)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="shipper suite: run the shipper under cProfile; top functions go to bench/results/",
    )
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="shipper suite: runs per case; the median is reported (default 3)",
    )
    parser.add_argument(
        "--rounds", type=int, help="floor suite: rounds of floor and proxy (default 6, quick 2)"
    )
    parser.add_argument(
        "--workers", type=int, choices=(1, 2), action="append",
        help="floor suite: worker processes of each (repeatable; default 1 and 2)",
    )
    parser.add_argument(
        "--proxy-pythonpath", type=Path, metavar="DIR",
        help="floor suite: the proxy from this source tree (first on its PYTHONPATH)",
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds: at least 1")
    if args.proxy_pythonpath is not None and not (args.proxy_pythonpath / "proxy").is_dir():
        parser.error(f"--proxy-pythonpath: no proxy/ in {args.proxy_pythonpath}")
    suites = args.suite or list(DEFAULT_SUITES)
    command = "python -m bench" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    if "shipper" in suites:
        shipper_bench.run_suite(
            quick=args.quick,
            storages=tuple(args.storage or shipper_bench.STORAGES),
            profile=args.profile,
            command=command,
            repeat=max(1, args.repeat),
        )
    if "memory" in suites:
        from bench import proxy_memory

        proxy_memory.main(["--mib", "64"] if args.quick else [])
    if "scrub" in suites:
        from bench import proxy_scrub

        proxy_scrub.main()
    if "proxy" in suites:
        from bench import proxy_bench  # needs the bench extra (matplotlib)

        proxy_bench.run_suite(quick=args.quick, command=command,
                              with_litellm=not args.no_litellm)
    if "explorer" in suites:
        from bench import explorer_bench

        quick = ["--records", "20000", "--azure-records", "2000"]
        explorer_bench.main(quick if args.quick else [])
    if "floor" in suites:
        from bench import versus

        versus.run_suite(plan=versus.Plan.of(args.quick, args.rounds),
                         workers=args.workers or (1, 2), command=command,
                         proxy_pythonpath=args.proxy_pythonpath)
    return 0


if __name__ == "__main__":
    sys.exit(main())
