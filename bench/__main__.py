"""``python -m bench [--quick]``: run the benchmark suite and write its result tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import shipper_bench


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the records: a smoke run, not a figure"
    )
    parser.add_argument(
        "--storage",
        choices=shipper_bench.STORAGES,
        action="append",
        help="only this storage (repeatable; default: all)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the shipper under cProfile; the top functions go to bench/results/",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per case; the median is reported (default 3)"
    )
    args = parser.parse_args(argv)
    command = "python -m bench" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    shipper_bench.run_suite(
        quick=args.quick,
        storages=tuple(args.storage or shipper_bench.STORAGES),
        profile=args.profile,
        command=command,
        repeat=max(1, args.repeat),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
