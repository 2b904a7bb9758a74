"""End to end on Azure: records XADDed to a real Redis land in Azurite append blobs exactly once.

In-process shippers for names, parallel shippers, crashes and outages; real
``python -m shipper`` processes for ``kill -9`` and recovery.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from azure.storage.blob import BlobServiceClient

from shared.naming import file_name, file_stem, parse_file_name
from shared.record import Record
from shipper.settings import ShipperSettings
from shipper.sink import Placement, Prepare
from shipper.sink_azure import AzureSink
from tests.factories import make_record
from tests.shipper.conftest import (
    Publish,
    events,
    on_azure,
    pending_count,
    running_worker,
    start_shipper,
    stream_length,
)
from tests.support.azurite import Azurite
from tests.support.waiting import async_wait_until, wait_until

pytestmark = pytest.mark.azure

HOSTILE_MODELS = ("../../etc/passwd", "a/b", "ft:gpt-4o:org::x", "..", "gpt-4o")


def read_blobs(connection_string: str, container: str) -> dict[str, list[dict[str, Any]]]:
    """Every blob's lines as JSON; fails on a torn or broken line."""
    blobs: dict[str, list[dict[str, Any]]] = {}
    with BlobServiceClient.from_connection_string(connection_string) as service:
        client = service.get_container_client(container)
        if not client.exists():
            return blobs
        for blob in client.list_blobs():
            assert blob.blob_type == "AppendBlob", blob.name
            data = client.download_blob(blob.name).readall()
            assert data == b"" or data.endswith(b"\n"), f"{blob.name} ends in a torn line"
            blobs[blob.name] = [json.loads(line) for line in data.splitlines()]
    return blobs


def any_blob_written(connection_string: str, container: str) -> bool:
    """Cheap enough to poll: lists the blobs, reads none."""
    with BlobServiceClient.from_connection_string(connection_string) as service:
        client = service.get_container_client(container)
        return client.exists() and any(blob.size for blob in client.list_blobs())


def shipped_ids(connection_string: str, container: str) -> list[str]:
    """The ``id`` of every line of every blob, duplicates included."""
    return [line["id"] for lines in read_blobs(connection_string, container).values()
            for line in lines]


async def async_shipped_ids(connection_string: str, container: str) -> list[str]:
    return await asyncio.to_thread(shipped_ids, connection_string, container)


def drained(client: redis.Redis) -> bool:
    return stream_length(client) == 0 and pending_count(client) == 0


def backlog(publish: Publish, count: int, body_bytes: int = 0, users: int = 3) -> set[str]:
    records = [make_record(user_id=f"user-{n % users}", body_bytes=body_bytes)
               for n in range(count)]
    for start in range(0, count, 2000):
        publish(records[start : start + 2000])
    return {record.id for record in records}


async def test_records_land_in_blobs_named_as_design_says_with_every_field(
    azure_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    azurite_connection_string: str, container: str,
) -> None:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    records = [make_record(model=model, user_id=user)
               for model in HOSTILE_MODELS for user in ("u_1", None, "../x")]
    records += [
        make_record(model=None),
        make_record(timestamp=midnight - timedelta(microseconds=1)),  # 23:59:59.999999 UTC
    ]
    publish(records)

    async with running_worker(azure_settings):
        await async_wait_until(lambda: drained(redis_client), what="the stream drained")

    blobs = await asyncio.to_thread(read_blobs, azurite_connection_string, container)
    expected: dict[str, list[Record]] = {}
    for record in records:
        name = file_name(file_stem(record.user_id, record.model, record.timestamp))
        expected.setdefault(name, []).append(record)
    assert sorted(blobs) == sorted(expected)
    for name, lines in blobs.items():
        assert "/" not in name and "\\" not in name  # one blob at the container's root
        parsed = parse_file_name(name)
        assert [Record.model_validate(line) for line in lines] == expected[name]
        assert {(parsed.user_id, parsed.model)} == {(r.user_id, r.model) for r in expected[name]}
    yesterday = (midnight - timedelta(days=1)).strftime("%Y%m%d")
    assert f"user-1_gpt-4o-mini_{yesterday}.jsonl" in blobs


async def test_two_shippers_share_the_blobs_with_no_loss_and_no_duplicate(
    azure_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    azurite_connection_string: str, container: str,
) -> None:
    expected = backlog(publish, 1500, body_bytes=200, users=2)
    # The default claim time: on a busy machine (tests in parallel) the event loop can lag past
    # the fixture's 1 s, and one shipper would claim the other's batch in hand as a dead one's
    # (claiming is test_worker.py's); here both are alive and must share.
    small = {"shipper_batch_max_records": 50, "shipper_claim_idle_ms": 30_000}
    first = azure_settings.model_copy(update={**small, "shipper_consumer_name": "one"})
    second = azure_settings.model_copy(update={**small, "shipper_consumer_name": "two"})

    async with running_worker(first) as one, running_worker(second) as two:
        await async_wait_until(lambda: drained(redis_client), what="both shippers drain")

    ids = await async_shipped_ids(azurite_connection_string, container)
    assert len(ids) == len(expected) and set(ids) == expected
    assert one.totals.records_shipped_total > 0 and two.totals.records_shipped_total > 0


class CrashAfterAppend(AzureSink):
    """Appends for real, then fails as if the process died before acknowledging."""

    crashes = 0

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        await super().append(stem, payload, prepare)
        self.crashes += 1
        raise RuntimeError("crash between append and ack")


@pytest.mark.parametrize("same_consumer", [True, False], ids=["restart", "claimed-by-other"])
async def test_appended_but_unacknowledged_records_are_not_written_again(
    same_consumer: bool, azure_settings: ShipperSettings, publish: Publish,
    redis_client: redis.Redis, azurite_connection_string: str, container: str,
) -> None:
    expected = backlog(publish, 300)
    crashing = CrashAfterAppend(container, connection_string=azurite_connection_string)
    dead = azure_settings.model_copy(update={"shipper_consumer_name": "dead-one"})
    with pytest.raises(RuntimeError, match="crash between append and ack"):
        async with running_worker(dead, crashing) as crashed:
            await async_wait_until(lambda: crashing.crashes > 0, what="the crash")
    await crashing.close()  # the dead worker's clients, as a real process exit would
    await crashed.source.close()
    assert pending_count(redis_client) > 0

    rescuer = dead if same_consumer else azure_settings
    async with running_worker(rescuer) as worker:
        await async_wait_until(lambda: drained(redis_client), what="recovery")

    ids = await async_shipped_ids(azurite_connection_string, container)
    assert sorted(ids) == sorted(expected)
    assert worker.totals.records_already_landed_total > 0


@pytest.mark.slow
async def test_azurite_outage_acks_nothing_unwritten_and_resumes(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    tmp_path: Path, container: str,
) -> None:
    with Azurite(tmp_path / "azurite", persistent=True) as azurite:
        settings = on_azure(shipper_settings, azurite.connection_string, container)
        async with running_worker(settings) as worker:
            before = backlog(publish, 200)
            await async_wait_until(lambda: drained(redis_client), what="shipping before")

            azurite.stop()
            during = backlog(publish, 200)
            await async_wait_until(lambda: worker.totals.storage_retries_total >= 3,
                                 what="storage retries")
            assert stream_length(redis_client) == len(during)  # nothing acknowledged

            azurite.start()
            await async_wait_until(lambda: drained(redis_client), what="shipping after")

        ids = await async_shipped_ids(azurite.connection_string, container)
    assert sorted(ids) == sorted(before | during)


async def test_blobs_roll_over_at_the_block_threshold(
    azure_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    azurite_connection_string: str, container: str,
) -> None:
    settings = azure_settings.model_copy(
        update={"azure_rollover_blocks": 2, "shipper_batch_max_records": 10}
    )
    records = [make_record() for _ in range(60)]
    async with running_worker(settings):
        for start in range(0, len(records), 10):  # several batches: several blocks
            publish(records[start : start + 10])
            await async_wait_until(lambda: drained(redis_client), what="a batch shipped")

    blobs = await asyncio.to_thread(read_blobs, azurite_connection_string, container)
    stem = file_stem("user-1", "gpt-4o-mini", records[0].timestamp)
    assert sorted(blobs) == sorted(file_name(stem, part) for part in range(len(blobs)))
    assert len(blobs) >= 3
    lines = [line for part in range(len(blobs)) for line in blobs[file_name(stem, part)]]
    assert [line["id"] for line in lines] == [record.id for record in records]


@pytest.fixture
def azure_env(
    shipper_env: dict[str, str], azurite_connection_string: str, container: str
) -> dict[str, str]:
    return {
        **shipper_env,
        "STORAGE_TYPE": "azure",
        "AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string,
        "AZURE_STORAGE_CONTAINER": container,
    }


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Shipper processes a test started; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def kill_while_holding_a_batch(process: subprocess.Popen[bytes], client: redis.Redis) -> None:
    """SIGKILL the shipper at a moment it has read entries it has not acknowledged.

    It is frozen (SIGSTOP) while Redis is asked, so the answer still holds at the kill.
    """

    def frozen_holding_a_batch() -> bool:
        process.send_signal(signal.SIGSTOP)
        if pending_count(client) > 0:
            return True
        process.send_signal(signal.SIGCONT)
        return False

    wait_until(frozen_holding_a_batch, 30, "the shipper to hold a batch", interval_s=0.005)
    process.kill()
    process.wait(timeout=10)


@pytest.mark.slow
def test_kill_9_mid_batch_then_a_new_process_ships_every_record_exactly_once(
    azure_env: dict[str, str], publish: Publish, redis_client: redis.Redis,
    azurite_connection_string: str, container: str, tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    expected = backlog(publish, 10_000, body_bytes=1000)
    victim_env = {**azure_env, "SHIPPER_BATCH_MAX_RECORDS": "200"}
    victim = start_shipper(victim_env, tmp_path / "run", tmp_path / "victim.log")
    processes.append(victim)
    wait_until(lambda: any_blob_written(azurite_connection_string, container),
             what="the first lines in Azure")
    kill_while_holding_a_batch(victim, redis_client)
    assert stream_length(redis_client) > pending_count(redis_client) > 0

    rescuer_log = tmp_path / "rescuer.log"
    rescuer = start_shipper(azure_env, tmp_path / "run", rescuer_log)
    processes.append(rescuer)
    wait_until(lambda: drained(redis_client), timeout_s=90, what="recovery")
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=20) == 0

    ids = shipped_ids(azurite_connection_string, container)
    assert len(ids) == len(expected) and set(ids) == expected
    assert sum(event["entries"] for event in events(rescuer_log, "entries_claimed")) > 0
