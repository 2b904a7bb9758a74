"""On Azurite: the claim race of issue 7, permanent errors, replicas that disagree on
``AZURE_ROLLOVER_BLOCKS``; with a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from azure.storage.blob.aio import BlobServiceClient

from shared.naming import file_name, file_stem
from shared.streams import dead_letter_stream
from shipper.delivery import Delivery
from shipper.intents import IntentLedger
from shipper.settings import ShipperSettings
from shipper.sink import AppendConflict, PermanentStorageError, Placement
from shipper.sink_azure import AzureSink
from shipper.source import StreamSource, build_source
from tests.factories import make_record
from tests.shipper.conftest import STREAM, Publish, running_worker
from tests.shipper.test_azure_shipping import drained, shipped_ids
from tests.shipper.test_exactly_once import _lines
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.azure


class GatedAzureSink(AzureSink):
    """A real Azure sink whose first Append Block waits at a gate the test opens."""

    def __init__(self, container: str, connection_string: str) -> None:
        super().__init__(container, connection_string=connection_string)
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()
        self.conflicts = 0

    async def _append_block(self, placement: Placement, payload: bytes) -> None:
        if not self.reached.is_set():
            self.reached.set()
            await self.gate.wait()
        try:
            await super()._append_block(placement, payload)
        except AppendConflict:
            self.conflicts += 1
            raise


def _delivery(settings: ShipperSettings, consumer: str, sink: AzureSink
              ) -> tuple[StreamSource, Delivery]:
    source = build_source(settings, consumer)
    ledger = IntentLedger(source.client, source.stream, source.group, consumer,
                          source.intents_key, source.shipped_key)
    return source, Delivery(sink, ledger, retry_max_s=0.2)


@pytest.fixture
async def sinks(
    azurite_connection_string: str, container: str
) -> AsyncIterator[tuple[GatedAzureSink, GatedAzureSink]]:
    pair = (GatedAzureSink(container, azurite_connection_string),
            GatedAzureSink(container, azurite_connection_string))
    for sink in pair:
        await sink.start()
    yield pair
    for sink in pair:
        await sink.close()


async def test_the_claim_race_of_issue_7_ends_with_each_record_once(
    azure_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    sinks: tuple[GatedAzureSink, GatedAzureSink], azurite_connection_string: str,
    container: str,
) -> None:
    records = [make_record(user_id="u") for _ in range(4)]
    stem = file_stem("u", "gpt-4o-mini", records[0].timestamp)
    sink_a, sink_b = sinks
    source_a, delivery_a = _delivery(azure_settings, "a", sink_a)
    source_b, delivery_b = _delivery(azure_settings, "b", sink_b)
    await source_a.ensure_group()
    publish(records[:3])
    held_by_a = await source_a.read(">", 3, None)
    # A records its intent; its append is in flight (held at the gate), unacknowledged.
    write_a = asyncio.create_task(delivery_a.write(stem, _lines(held_by_a)))
    await sink_a.reached.wait()
    # B claims A's entries, reads one more, places them all at the same end of the blob.
    publish(records[3:])
    claimed = await source_b.claim_idle(0, 10)
    fresh = await source_b.read(">", 10, None)
    write_b = asyncio.create_task(delivery_b.write(stem, _lines([*claimed, *fresh])))
    await sink_b.reached.wait()
    # A's append lands; then B's, at the same position, is refused; B retries.
    sink_a.gate.set()
    outcome_a = await write_a
    sink_b.gate.set()
    outcome_b = await write_b
    assert sink_b.conflicts == 1
    assert len(outcome_a.written) == 3
    assert len(outcome_b.already) == 3 and len(outcome_b.written) == 1
    ids = await asyncio.to_thread(shipped_ids, azurite_connection_string, container)
    assert ids == [r.id for r in records]
    for source in (source_a, source_b):
        await source.close()


async def test_a_blob_of_the_wrong_type_is_dead_lettered_and_the_rest_ships(
    azure_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    azurite_connection_string: str, container: str,
) -> None:
    good = [make_record(user_id=f"u{n % 2}") for n in range(20)]
    bad = [make_record(user_id="taken") for _ in range(3)]
    target = file_name(file_stem("taken", "gpt-4o-mini", bad[0].timestamp))
    async with BlobServiceClient.from_connection_string(azurite_connection_string) as service:
        await service.create_container(container)
        await service.get_blob_client(container, target).upload_blob(b"a block blob\n")
    publish([*good[:10], *bad, *good[10:]])
    async with running_worker(azure_settings) as worker:
        await async_wait_until(lambda: drained(redis_client), what="drained")
    async with BlobServiceClient.from_connection_string(azurite_connection_string) as service:
        client = service.get_container_client(container)
        assert await (await client.download_blob(target)).readall() == b"a block blob\n"
        await client.delete_blob(target)
    ids = await asyncio.to_thread(shipped_ids, azurite_connection_string, container)
    assert sorted(ids) == sorted(r.id for r in good)
    dead = redis_client.xrange(dead_letter_stream(STREAM))
    assert len(dead) == 3 and worker.totals.storage_retries_total == 0
    for _, fields in dead:
        assert b"not an append blob" in fields[b"reason"]
        assert fields[b"target"] == target.encode()


async def test_a_name_azure_would_refuse_is_a_permanent_error(
    sinks: tuple[GatedAzureSink, GatedAzureSink],
) -> None:
    sink = AzureSink(sinks[0].container, connection_string=sinks[0]._fs.connection_string)
    try:
        with pytest.raises(PermanentStorageError, match="1024"):
            await sink.append("x" * 1100, b"{}\n", _yes)
    finally:
        await sink.close()


async def _yes(placement: Placement) -> bool:
    return True


async def test_replicas_that_disagree_on_rollover_follow_the_blob(
    azurite_connection_string: str, container: str,
) -> None:
    stem = "u_m_20240101"
    small = AzureSink(container, connection_string=azurite_connection_string, rollover_blocks=3)
    large = AzureSink(container, connection_string=azurite_connection_string)
    await small.start()
    names = []
    try:
        for n in range(8):
            sink = (small, large)[n % 2]  # each blob was created by one of them
            while True:
                try:
                    placement = await sink.append(stem, f'{{"n":{n}}}\n'.encode(), _yes)
                    break
                except AppendConflict:
                    continue
            assert placement is not None
            names.append(placement.name)
    finally:
        await small.close()
        await large.close()
    # Part 0 was created by the sink rolling over at 3 blocks: the other one stops there
    # too. Part 1 was created by the other one: both keep writing it.
    assert names == [file_name(stem)] * 3 + [file_name(stem, 1)] * 5
