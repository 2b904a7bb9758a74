"""What one record costs Redis: CPU per step and bytes held, for the capacity plan.

``.venv/bin/python -m bench.redis_cost [--records N]`` starts a private ``redis-server``
and walks records of 2 KB and of 20 KB through every step the services take, with the
services' own code and batch sizes:

1. publish: ``XADD`` in pipelines of ``PUBLISH_BATCH`` (the proxy's batch under load);
2. read: ``XREADGROUP`` of up to 10,000 entries (the shipper's read);
3. intents: ``shipper.intents.IntentLedger.place`` per file chunk;
4. ack: ``shipper.source.StreamSource.finish`` (XACK, XDEL, shipped ids).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.shipper_bench import KIB, record_lines
from shared.record import Record
from shared.streams import CONSUMER_GROUP, RECORD_FIELD, intents_key, shipped_key
from shipper.intents import IntentLedger
from shipper.sink import Placement
from shipper.source import StreamSource
from tests.support.redis_server import RedisServer

STREAM = "bench:exchanges"
PUBLISH_BATCH = 20
READ_COUNT = 10_000
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
    entries = []
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_cost", description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    costs = [measure(2 * KIB, args.records, args.runs),
             measure(20 * KIB, max(args.records // 4, 1000), args.runs)]
    print(report(costs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
