"""What checking and grouping one record costs the shipper, without Redis or storage.

``.venv/bin/python -m bench.shipper_cost`` builds one read's worth of records (as many as
the shipper asks for at once: 8 MiB) of 2 KB and of 20 KB, as the shipper bench does,
and times ``shipper.batch.parse_batches`` on them (the records' validation, their target
files and the chunks per file) and ``shipper.canonical.canonical_fields`` alone. It
prints the best of several runs in microseconds per record: the part of the shipper's
CPU that its own code decides, steadier than the end-to-end figures of
``bench/shipper_bench.py`` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable
from functools import partial

from bench.shipper_bench import KIB, record_lines
from shared.streams import RECORD_FIELD
from shipper.batch import parse_batches
from shipper.canonical import canonical_fields
from shipper.settings import ShipperSettings
from shipper.sink_local import LocalSink
from shipper.source import StreamEntry

_RECORD_KEY = RECORD_FIELD.encode()


def _best_s(run: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, collection off (the shipper rarely collects)."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best


def _check_each(lines: list[bytes]) -> None:
    for line in lines:
        canonical_fields(line)


def _parse_all(
    loop: asyncio.AbstractEventLoop, entries: list[StreamEntry], batch_bytes: int
) -> None:
    loop.run_until_complete(parse_batches(entries, batch_bytes, LocalSink.max_append_bytes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shipper_cost", description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    batch_bytes = ShipperSettings.model_fields["shipper_batch_max_bytes"].default
    loop = asyncio.new_event_loop()
    for size in (2 * KIB, 20 * KIB):
        count = batch_bytes // size
        lines = record_lines(count, size)
        entries = [StreamEntry(f"1-{n}", {_RECORD_KEY: line}) for n, line in enumerate(lines)]
        parse = partial(_parse_all, loop, entries, batch_bytes)
        parse_s = _best_s(parse, args.repeat)
        check_s = _best_s(partial(_check_each, lines), args.repeat)
        print(f"{size // KIB} KB records ({count:,} per read): parse_batches "
              f"{parse_s / count * 1e6:.2f} us per record, canonical_fields "
              f"{check_s / count * 1e6:.2f} us (best of {args.repeat})")
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
