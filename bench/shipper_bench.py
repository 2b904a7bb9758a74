"""End-to-end shipper throughput: from records in the Redis stream to durable lines in files.

For each storage (a local folder, Azurite) and record size (2 KB, 20 KB) the bench
starts a private ``redis-server`` (and an in-memory Azurite), fills the stream with
N realistic chat records from a handful of users and models, then runs ONE
``python -m shipper`` process (so one core does the shipping) and times it until
the stream is empty and nothing is pending. It then reads every file back and
checks that each record is there exactly once. Results go to
``bench/results/shipper.md``.

The clock starts when the shipper first reads from the stream (its consumer
appears in the group), so interpreter start-up is not counted; the time from
spawning the process is reported too.
"""

from __future__ import annotations

import io
import json
import os
import platform
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import redis
from azure.storage.blob import BlobServiceClient

from shared.streams import CONSUMER_GROUP, RECORD_FIELD
from tests.factories import make_record
from tests.support.azurite import Azurite
from tests.support.redis_server import RedisServer

Storage = Literal["local", "azure"]
STORAGES: tuple[Storage, ...] = ("local", "azure")

RESULTS = Path(__file__).resolve().parent / "results"
STREAM = "bench:exchanges"
USERS = ("alice", "bob", "carol", "dave")
MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini")
KIB = 1024
MB = 1_000_000
CASE_TIMEOUT_S = 300.0
TARGET_RECORDS_PER_S = 50_000
_XADD_PIPELINE = 1000


@dataclass(frozen=True)
class Case:
    storage: Storage
    record_bytes: int
    records: int
    run: int = 1

    @property
    def label(self) -> str:
        return f"{self.storage}-{self.record_bytes // KIB}k"

    @property
    def container(self) -> str:
        """Each Azure case writes to its own container of the one Azurite."""
        return f"bench-{self.label}-{self.run}"


@dataclass(frozen=True)
class Result:
    case: Case
    payload_bytes: int
    """Total size of the lines shipped (what landed in the files)."""
    shipping_s: float
    """From the shipper's first read until the stream is empty and nothing is pending."""
    spawn_to_done_s: float

    @property
    def records_per_s(self) -> float:
        return self.case.records / self.shipping_s

    @property
    def mb_per_s(self) -> float:
        return self.payload_bytes / MB / self.shipping_s


def cases(quick: bool, storages: tuple[Storage, ...]) -> list[Case]:
    """2 KB and 20 KB records on each storage; ``quick`` ships a tenth as many."""
    scale = 10 if quick else 1
    # About two seconds each: long enough that filling and draining the pipeline (two
    # reads ahead, the first read sized by a guess) is a small part of the time.
    sizes = {2 * KIB: 100_000, 20 * KIB: 20_000}
    return [
        Case(storage, size, count // scale) for storage in storages for size, count in sizes.items()
    ]


def record_lines(count: int, record_bytes: int) -> list[bytes]:
    """``count`` chat records of about ``record_bytes`` each as JSON, over 12 target files."""
    now = datetime.now(UTC)
    base = len(make_record(user_id=USERS[0], model=MODELS[0], body_bytes=1).to_json()) - 1
    body_bytes = max(record_bytes - base, 1)
    return [
        make_record(
            user_id=USERS[n % len(USERS)],
            model=MODELS[n % len(MODELS)],
            timestamp=now,
            body_bytes=body_bytes,
        ).to_json()
        for n in range(count)
    ]


def prefill(client: redis.Redis, lines: list[bytes]) -> None:
    for start in range(0, len(lines), _XADD_PIPELINE):
        pipe = client.pipeline(transaction=False)
        for line in lines[start : start + _XADD_PIPELINE]:
            pipe.xadd(STREAM, {RECORD_FIELD: line})
        pipe.execute()


def shipper_env(
    redis_url: str, case: Case, workdir: Path, azurite: Azurite | None
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SHIPPER_", "AZURE_", "REDIS_", "STORAGE_", "LOCAL_LOG", "LOG_"))
    }
    env.update(
        REDIS_URL=redis_url,
        REDIS_STREAM=STREAM,
        STORAGE_TYPE=case.storage,
        LOCAL_LOG_DIR=str(workdir / "logs"),
        LOG_FORMAT="json",
    )
    if azurite is not None:
        env.update(
            AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string,
            AZURE_STORAGE_CONTAINER=case.container,
        )
    return env


def group_state(client: redis.Redis) -> tuple[int, int]:
    """(consumers, pending) of the shippers' group; (0, 0) before it exists."""
    try:
        groups = client.xinfo_groups(STREAM)
    except redis.ResponseError:
        return 0, 0
    for group in groups:
        if group["name"] in (CONSUMER_GROUP, CONSUMER_GROUP.encode()):
            return int(group["consumers"]), int(group["pending"])
    return 0, 0


def wait_until_shipped(
    client: redis.Redis, process: subprocess.Popen[bytes]
) -> tuple[float, float]:
    """Poll Redis until the shipper has drained the stream; returns (first read, done) times."""
    deadline = time.monotonic() + CASE_TIMEOUT_S
    first_read: float | None = None
    while True:
        now = time.monotonic()
        consumers, pending = group_state(client)
        if first_read is None and consumers:
            first_read = now
        if first_read is not None and pending == 0 and client.xlen(STREAM) == 0:
            return first_read, now
        if process.poll() is not None:
            raise RuntimeError(f"the shipper exited with {process.returncode}")
        if now > deadline:
            raise TimeoutError(f"not shipped after {CASE_TIMEOUT_S}s")
        time.sleep(0.005)


def stored_files(case: Case, workdir: Path, azurite: Azurite | None) -> Iterator[bytes]:
    if case.storage == "local":
        for path in sorted((workdir / "logs").iterdir()):
            if path.suffix == ".jsonl":  # not the write markers (.writing)
                yield path.read_bytes()
        return
    assert azurite is not None
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        container = service.get_container_client(case.container)
        for blob in container.list_blobs():
            yield container.download_blob(blob.name).readall()


def check_exactly_once(files: Iterator[bytes], lines: list[bytes]) -> int:
    """Every record's id exactly once across the files; returns the bytes stored."""
    expected = sorted(json.loads(line)["id"] for line in lines)
    stored: list[str] = []
    size = 0
    for data in files:
        size += len(data)
        stored.extend(json.loads(line)["id"] for line in data.splitlines())
    if sorted(stored) != expected:
        raise AssertionError(
            f"shipped {len(stored)} lines ({len(set(stored))} distinct) for {len(expected)} records"
        )
    return size


def run_case(case: Case, workdir: Path, azurite: Azurite | None, profile: bool) -> Result:
    """Fill the stream, ship it with one process, verify the files."""
    workdir.mkdir(parents=True)
    lines = record_lines(case.records, case.record_bytes)
    with RedisServer(workdir / "redis") as server:
        client = redis.Redis.from_url(server.url)
        prefill(client, lines)
        command = [sys.executable, "-m", "shipper"]
        if profile:
            command[1:1] = ["-m", "cProfile", "-o", str(workdir / "shipper.prof")]
        env = shipper_env(server.url, case, workdir, azurite)
        with (workdir / "shipper.log").open("wb") as log:
            spawned = time.monotonic()
            process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                first_read, done = wait_until_shipped(client, process)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
        client.close()
    size = check_exactly_once(stored_files(case, workdir, azurite), lines)
    if profile:
        write_profile(case, workdir / "shipper.prof")
    return Result(case, size, done - first_read, done - spawned)


def write_profile(case: Case, path: Path) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    (RESULTS / f"shipper_profile_{case.label}.txt").write_text(out.getvalue())


def _median(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.shipping_s)[len(results) // 2]


def report(runs: list[list[Result]], command: str, quick: bool) -> str:
    """The table: per case, the median run and the range of all runs."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    target = []
    for results in runs:
        median = _median(results)
        if median.case.storage == "local" and median.case.record_bytes == 2 * KIB:
            met = "met" if median.records_per_s >= TARGET_RECORDS_PER_S else "**not met**"
            target = [f"Target: at least {TARGET_RECORDS_PER_S:,} records/s of 2 KB to local "
                      f"disk with one shipper process (the median run): "
                      f"{median.records_per_s:,.0f}, {met}.", ""]
        rates = sorted(r.records_per_s for r in results)
        rows.append(
            f"| {median.case.storage} | {median.case.record_bytes // KIB} KB "
            f"| {median.case.records:,} | {len(results)} | {median.shipping_s:.2f} "
            f"| {median.records_per_s:,.0f} | {rates[0]:,.0f} to {rates[-1]:,.0f} "
            f"| {median.mb_per_s:.1f} | {median.spawn_to_done_s:.2f} |"
        )
    return "\n".join(
        [
            "# Shipper throughput, end to end (XADD backlog to durable lines)",
            "",
            f"- date: {when}{' (quick run: smaller N, not a figure to quote)' if quick else ''}",
            f"- machine: {os.cpu_count()} cores, {platform.machine()}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
            f"- command: `{command}` (from the repository root; `make bench` runs it)",
            "- one `python -m shipper` process with default settings; a private redis-server; "
            "Azurite in memory on the same machine",
            "- records: realistic chat-completion records (`tests.factories.make_record`), "
            f"{len(USERS)} users x {len(MODELS)} models = 12 files",
            "- time: from the shipper's first read until the stream is empty and nothing is "
            "pending; every record was then found exactly once in the files",
            "- each case runs several times on a fresh Redis; the row shows the median run and "
            "the range of records/s over all runs (this 2-core machine is noisy)",
            "",
            "| storage | record | N | runs | seconds | records/s | range | MB/s "
            "| spawn to done (s) |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *target,
        ]
    )


def run_suite(
    quick: bool, storages: tuple[Storage, ...], profile: bool, command: str, repeat: int
) -> None:
    """Run each case ``repeat`` times; print and write the table to ``results/shipper.md``."""
    RESULTS.mkdir(exist_ok=True)
    runs: list[list[Result]] = []
    with tempfile.TemporaryDirectory(prefix="shipper-bench-") as tmp:
        root = Path(tmp)
        azurite = Azurite(root / "azurite") if "azure" in storages else None
        if azurite is not None:
            azurite.start()
        try:
            for case in cases(quick, storages):
                results: list[Result] = []
                for attempt in range(1, repeat + 1):
                    print(f"shipper bench: {case.label}, {case.records:,} records, "
                          f"run {attempt}/{repeat} ...", flush=True)
                    workdir = root / f"{case.label}-{attempt}"
                    result = run_case(replace(case, run=attempt), workdir, azurite, profile)
                    print(
                        f"  {result.records_per_s:,.0f} records/s, {result.mb_per_s:.1f} MB/s "
                        f"({result.shipping_s:.2f} s)",
                        flush=True,
                    )
                    results.append(result)
                runs.append(results)
        finally:
            if azurite is not None:
                azurite.stop()
    table = report(runs, command, quick)
    (RESULTS / "shipper.md").write_text(table)
    print(table)
