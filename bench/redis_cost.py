"""What one record costs Redis: CPU per step and bytes held, for the capacity plan.

``.venv/bin/python -m bench.redis_cost [--records N]`` starts a private ``redis-server``
and walks records of 2 KB and of 20 KB through every step the services take, with the
services' own code and batch sizes:

1. publish: ``XADD`` in pipelines of ``PUBLISH_BATCH`` (the proxy's batch under load);
2. read: ``XREADGROUP`` of up to 10,000 entries (the shipper's read);
3. intents: ``shipper.intents.IntentLedger.place`` per file chunk;
4. ack: ``shipper.source.StreamSource.finish`` (XACK, XDEL, shipped ids).

It also times the cost of ``REDIS_MIN_REPLICAS=1`` (``--wait``): one publisher's batches
of ``PUBLISH_BATCH`` records (``proxy.publish.outcomes.xadd_batch``) against a primary
with a local replica, without and with ``WAIT``, one after another: the round trip's
p50 and p99, and records per second of that one loop.

For each step it prints Redis's own CPU per record from ``INFO commandstats`` (the
commands' ``usec``, reset before the step) and the server's whole CPU per record
(``INFO cpu``, so network and protocol work too), and the bytes each record holds
in the stream, the intents hash and the shipped-ids set (``MEMORY USAGE``).
``docs/capacity.md`` turns these figures into sizing. The machine it ran on is
shared: CPU figures vary by some 30 % from run to run; the best of ``--runs`` is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.shipper_bench import KIB, record_lines
from proxy.publish.outcomes import Outcome, xadd_batch
from shared.record import Record
from shared.replication import ReplicaWait
from shared.streams import CONSUMER_GROUP, RECORD_FIELD, intents_key, shipped_key
from shipper.intents import IntentLedger
from shipper.sink import Placement
from shipper.source import StreamEntry, StreamSource
from tests.support.redis_sentinel import ReplicatedRedis
from tests.support.redis_server import RedisServer

STREAM = "bench:exchanges"
PUBLISH_BATCH = 20
READ_COUNT = 10_000
WAIT_ROUNDS = 5
FILE_CHUNK = 1_000
"""Records per ``place`` call: a 10,000-record read spread over about ten files."""


@dataclass
class Step:
    """One step's CPU per record: the commands' own, and the whole server's."""

    name: str
    command_us: float
    server_us: float


@dataclass
class Cost:
    record_bytes: int
    steps: list[Step]
    stream_bytes: float
    intents_bytes: float
    shipped_bytes: float


def _server_cpu_s(client: redis.Redis) -> float:
    info: dict[str, Any] = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _command_usec(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    # A script's time includes the commands it calls, which are also counted on their own.
    scripts = {key: value for key, value in stats.items() if key.startswith("cmdstat_eval")}
    counted = scripts or {key: value for key, value in stats.items() if key != "cmdstat_config"}
    return sum(int(value["usec"]) for value in counted.values())


class _Meter:
    """CPU of one step, per record."""

    def __init__(self, client: redis.Redis, name: str, records: int) -> None:
        self.client, self.name, self.records = client, name, records

    def __enter__(self) -> _Meter:
        self.client.config_resetstat()
        self.cpu_s = _server_cpu_s(self.client)
        return self

    def __exit__(self, *exc: object) -> None:
        self.step = Step(
            self.name,
            command_us=_command_usec(self.client) / self.records,
            server_us=(_server_cpu_s(self.client) - self.cpu_s) * 1e6 / self.records,
        )


async def _walk(url: str, lines: list[bytes], steps: list[Step]) -> tuple[float, float, float]:
    sync = redis.Redis.from_url(url)
    client = aioredis.Redis.from_url(url)
    sync.flushall()
    count = len(lines)
    ids = [Record.model_validate_json(line).id for line in lines]

    with _Meter(sync, "publish (XADD)", count) as meter:
        for start in range(0, count, PUBLISH_BATCH):
            async with client.pipeline(transaction=False) as pipe:
                for line in lines[start : start + PUBLISH_BATCH]:
                    pipe.xadd(STREAM, {RECORD_FIELD: line})
                await pipe.execute()
    steps.append(meter.step)
    stream_bytes = int(sync.memory_usage(STREAM, samples=0) or 0) / count
    sync.xgroup_create(STREAM, CONSUMER_GROUP, id="0")

    source = StreamSource(client, STREAM, "bench")
    entries: list[StreamEntry] = []
    with _Meter(sync, "read (XREADGROUP)", count) as meter:
        while len(entries) < count:
            entries.extend(await source.read(">", READ_COUNT, None))
    steps.append(meter.step)
    entry_ids = [entry.entry_id for entry in entries]

    ledger = IntentLedger(client, STREAM, CONSUMER_GROUP, "bench", intents_key(STREAM),
                          shipped_key(STREAM))
    with _Meter(sync, "intents (script)", count) as meter:
        for start in range(0, count, FILE_CHUNK):
            placement = Placement.of(f"file{start}.jsonl", 0, b"x" * 100)
            await ledger.place(placement, ids[start : start + FILE_CHUNK],
                               entry_ids[start : start + FILE_CHUNK], force=False)
    steps.append(meter.step)
    intents_bytes = int(sync.memory_usage(intents_key(STREAM), samples=0) or 0) / count

    with _Meter(sync, "ack (script)", count) as meter:
        for start in range(0, count, READ_COUNT):
            await source.finish(entry_ids[start : start + READ_COUNT],
                                ids[start : start + READ_COUNT])
    steps.append(meter.step)
    shipped_bytes = int(sync.memory_usage(shipped_key(STREAM), samples=0) or 0) / count
    await client.aclose()
    sync.close()
    return stream_bytes, intents_bytes, shipped_bytes


def measure(record_bytes: int, records: int, runs: int) -> Cost:
    """The best of ``runs`` walks of ``records`` records of about ``record_bytes``."""
    lines = record_lines(records, record_bytes)
    best: Cost | None = None
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder)) as server:
        for _ in range(runs):
            steps: list[Step] = []
            sizes = asyncio.run(_walk(server.url, lines, steps))
            cost = Cost(record_bytes, steps, *sizes)
            if best is None or sum(s.server_us for s in steps) < sum(
                s.server_us for s in best.steps
            ):
                best = cost
    assert best is not None
    return best


def report(costs: list[Cost]) -> str:
    """The figures as Markdown tables."""
    lines = ["| record | step | commands µs/record | server CPU µs/record |",
             "|---|---|---:|---:|"]
    for cost in costs:
        for step in cost.steps:
            lines.append(f"| {cost.record_bytes // KIB} KB | {step.name} | "
                         f"{step.command_us:.1f} | {step.server_us:.1f} |")
        total_c = sum(s.command_us for s in cost.steps)
        total_s = sum(s.server_us for s in cost.steps)
        lines.append(f"| {cost.record_bytes // KIB} KB | **all four** | **{total_c:.1f}** | "
                     f"**{total_s:.1f}** |")
    lines += ["", "| record | stream bytes/record | intents bytes/record | "
              "shipped-ids bytes/record |", "|---|---:|---:|---:|"]
    for cost in costs:
        lines.append(f"| {cost.record_bytes // KIB} KB | {cost.stream_bytes:,.0f} | "
                     f"{cost.intents_bytes:,.0f} | {cost.shipped_bytes:,.0f} |")
    return "\n".join(lines)


async def _publish_loop(
    url: str, lines: list[bytes], wait: ReplicaWait
) -> tuple[list[float], float]:
    client = aioredis.Redis.from_url(url)
    await client.delete(STREAM)
    round_trips_s = []
    started = time.perf_counter()
    for start in range(0, len(lines), PUBLISH_BATCH):
        sent = time.perf_counter()
        landing = await xadd_batch(client, STREAM, lines[start : start + PUBLISH_BATCH],
                                   timeout_s=2, replica_wait=wait)
        round_trips_s.append(time.perf_counter() - sent)
        assert all(outcome is Outcome.PUBLISHED for outcome in landing.outcomes)
    elapsed_s = time.perf_counter() - started
    await client.aclose()
    return round_trips_s, len(lines) / elapsed_s


def wait_cost(records: int) -> str:
    """Round trips of one publisher with and without ``WAIT 1``, against a local replica."""
    lines = record_lines(records, 2 * KIB)
    rows = ["| 2 KB records, batches of 20 | p50 ms | p99 ms | records/s (one loop) |",
            "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as folder, \
            ReplicatedRedis(Path(folder), replicas=1) as servers:
        results: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(WAIT_ROUNDS):  # alternated, so a burst of other load hits both
            for label, wait in (("REDIS_MIN_REPLICAS=0", ReplicaWait()),
                                ("REDIS_MIN_REPLICAS=1", ReplicaWait(1, 1000))):
                trips, rate = asyncio.run(_publish_loop(servers.url, lines, wait))
                trips.sort()
                p50, p99 = trips[len(trips) // 2], trips[int(len(trips) * 0.99)]
                results.setdefault(label, []).append((p50, p99, rate))
        for label, runs in results.items():
            p50, p99, rate = sorted(runs)[len(runs) // 2]  # the run with the median p50
            rows.append(f"| {label} | {p50 * 1000:.2f} | {p99 * 1000:.2f} | {rate:,.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_cost", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wait", action="store_true", help="only the cost of WAIT")
    args = parser.parse_args(argv)
    if args.wait:
        print(wait_cost(args.records))
        return 0
    costs = [measure(2 * KIB, args.records, args.runs),
             measure(20 * KIB, max(args.records // 4, 1000), args.runs)]
    print(report(costs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
