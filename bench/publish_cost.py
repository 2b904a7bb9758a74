"""What publishing one record costs the proxy: the publisher's hand-over, its task, the
batched ``XADD`` round trip and the per-record bookkeeping, without the exchange.

``.venv/bin/python -m bench.publish_cost [--batches N] [--sizes 1,4,16] [--callgrind]``
builds the publishing pipeline as the proxy does (``proxy.publish.pipeline``) against a
private ``redis-server``, and hands it batches of records of about 1.5 KB, a batch in one
go as ``proxy.publish.deferred`` runs finished exchanges' record work, waiting for each
batch to be published before the next.

- CPU time per record (``time.process_time``): quick, noisy on a shared machine.
- ``--callgrind``: instructions per record, counted by valgrind's callgrind in two runs
  per batch size (N and 6 N batches after the same warm-up; the difference divided by
  the extra records), so two versions compare to a percent whatever the machine does.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import uvloop

from bench import callgrind
from proxy.metrics import Metrics
from proxy.publish.pending import PendingRecord
from proxy.publish.pipeline import Publishing, build_publishing
from proxy.settings import ProxySettings
from tests.factories import make_record
from tests.support.redis_server import RedisServer

WARM_UP_BATCHES = 100
_IDLE_S = 600.0
"""The drainer's interval: its wake-ups are not publishing's work."""


_PAYLOAD = make_record(body_bytes=1000).to_json()


def _batch(size: int) -> list[PendingRecord]:
    """Records with one payload: building records is not publishing's work."""
    return [PendingRecord(str(index), _PAYLOAD) for index in range(size)]


async def _publish_batch(publishing: Publishing, batch: list[PendingRecord]) -> None:
    """Hand ``batch`` over as ``Runtime`` does, and return once Redis has all of it."""
    published = asyncio.get_running_loop().create_future()
    batch[-1].hold(lambda: published.set_result(None))  # records settle in order
    for pending in batch:
        publishing.reservations.hold(pending)
        publishing.publisher.submit(pending)
    await published


async def _drive(settings: ProxySettings, batches: int, size: int) -> float:
    """CPU seconds per record over ``batches`` batches of ``size``, after the warm-up."""
    publishing = build_publishing(settings, Metrics())
    await publishing.start()
    try:
        for _ in range(WARM_UP_BATCHES):
            await _publish_batch(publishing, _batch(size))
        started = time.process_time()
        for _ in range(batches):
            await _publish_batch(publishing, _batch(size))
        return (time.process_time() - started) / (batches * size)
    finally:
        await publishing.stop(drain_timeout_s=5)


def _one_run(batches: int, size: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        redis = RedisServer(Path(folder) / "redis")
        redis.start()
        try:
            settings = ProxySettings(
                redis_url=redis.url,
                redis_stream="bench:publish",
                spool_dir=str(Path(folder) / "spool"),
                spool_drain_interval_s=_IDLE_S,
            )
            return uvloop.run(_drive(settings, batches, size))
        finally:
            redis.stop()


def _callgrind_instructions(batches: int, size: int) -> int:
    return callgrind.instructions(
        "bench.publish_cost", "--inner", "--batches", str(batches), "--sizes", str(size)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.publish_cost", description=__doc__)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--sizes", default="1,4,16", help="records per batch, comma-separated")
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per record, counted by valgrind (slow, repeatable)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    for size in sizes:
        if args.inner:
            _one_run(args.batches, size)
        elif args.callgrind:
            short = _callgrind_instructions(args.batches, size)
            long = _callgrind_instructions(6 * args.batches, size)
            per_record = (long - short) // (5 * args.batches * size)
            print(f"batch of {size}: {per_record:,} instructions per record "
                  f"(callgrind, {args.batches} and {6 * args.batches} batches)")
        else:
            per_record_us = _one_run(args.batches, size) * 1e6
            print(f"batch of {size}: {per_record_us:.1f} us CPU per record")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
