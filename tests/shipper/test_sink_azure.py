"""AzureSink against a real Azurite: append blobs, conditional appends, rollover, outages."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import StorageErrorCode
from azure.storage.blob.aio import BlobClient, BlobServiceClient

from shipper.sink import AppendConflict, Placement, StorageError
from shipper.sink_azure import AzureSink
from tests.support.azurite import Azurite
from tests.support.ports import free_port

pytestmark = pytest.mark.azure

STEM = "user-1_gpt-4o_20241021"

MakeSink = Callable[..., Awaitable[AzureSink]]
"""``await make_sink(rollover_blocks=3)``: a started sink on the test's container."""


async def write(placement: Placement) -> bool:
    return True


def new_container() -> str:
    return f"t{uuid.uuid4().hex[:24]}"


@pytest.fixture
def container() -> str:
    return new_container()


@pytest.fixture
async def make_sink(
    azurite_connection_string: str, container: str
) -> AsyncIterator[MakeSink]:
    """Started sinks on this test's container, closed at the end of the test."""
    sinks: list[AzureSink] = []

    async def make(rollover_blocks: int = 49_000) -> AzureSink:
        sink = AzureSink(
            container,
            connection_string=azurite_connection_string,
            rollover_blocks=rollover_blocks,
        )
        sinks.append(sink)
        await sink.start()
        return sink

    yield make
    for sink in sinks:
        await sink.close()


@pytest.fixture
async def service(azurite_connection_string: str) -> AsyncIterator[BlobServiceClient]:
    """An independent client to look at what the sink stored."""
    async with BlobServiceClient.from_connection_string(azurite_connection_string) as client:
        yield client


async def read_blob(service: BlobServiceClient, container: str, name: str) -> bytes:
    stream = await service.get_blob_client(container, name).download_blob()
    return await stream.readall()


async def block_count(service: BlobServiceClient, container: str, name: str) -> int:
    properties = await service.get_blob_client(container, name).get_blob_properties()
    return int(properties.append_blob_committed_block_count or 0)


async def blob_names(service: BlobServiceClient, container: str) -> list[str]:
    listing = service.get_container_client(container).list_blobs()
    return sorted([blob.name async for blob in listing])


async def test_appends_land_in_order_in_one_append_blob(
    make_sink: MakeSink, service: BlobServiceClient, container: str
) -> None:
    sink = await make_sink()
    first, second = b'{"n": 1}\n', b'{"n": 2}\n{"n": 3}\n'

    one = await sink.append(STEM, first, write)
    two = await sink.append(STEM, second, write)

    assert one == Placement.of(f"{STEM}.jsonl", 0, first)
    assert two == Placement.of(f"{STEM}.jsonl", len(first), second)
    assert await read_blob(service, container, f"{STEM}.jsonl") == first + second
    properties = await service.get_blob_client(container, f"{STEM}.jsonl").get_blob_properties()
    assert properties.blob_type == "AppendBlob"


async def test_start_creates_the_container_and_accepts_an_existing_one(
    make_sink: MakeSink, service: BlobServiceClient, container: str
) -> None:
    assert not await service.get_container_client(container).exists()

    sink = await make_sink()
    await sink.start()

    assert await service.get_container_client(container).exists()


async def test_prepare_sees_the_placement_first_and_can_veto_the_write(
    make_sink: MakeSink, service: BlobServiceClient, container: str
) -> None:
    sink = await make_sink()
    await sink.append(STEM, b"a\n", write)
    seen: list[Placement] = []

    async def refuse(placement: Placement) -> bool:
        seen.append(placement)
        return False

    assert await sink.append(STEM, b"bb\n", refuse) is None
    assert seen == [Placement.of(f"{STEM}.jsonl", 2, b"bb\n")]
    assert await read_blob(service, container, f"{STEM}.jsonl") == b"a\n"


async def test_two_writers_at_the_same_offset_exactly_one_wins(
    make_sink: MakeSink, service: BlobServiceClient, container: str
) -> None:
    left, right = await make_sink(), await make_sink()
    await left.append(STEM, b"base\n", write)
    both_placed = asyncio.Barrier(2)

    async def wait_for_the_other(placement: Placement) -> bool:
        await both_placed.wait()
        return True

    results = await asyncio.gather(
        left.append(STEM, b"left\n", wait_for_the_other),
        right.append(STEM, b"right\n", wait_for_the_other),
        return_exceptions=True,
    )

    winners = [result for result in results if isinstance(result, Placement)]
    losers = [result for result in results if isinstance(result, AppendConflict)]
    assert len(winners) == 1 and len(losers) == 1
    assert winners[0].offset == len(b"base\n")
    stored = await read_blob(service, container, f"{STEM}.jsonl")
    assert stored in (b"base\nleft\n", b"base\nright\n")


async def test_a_writer_whose_view_of_the_end_is_stale_is_refused_then_catches_up(
    make_sink: MakeSink, service: BlobServiceClient, container: str
) -> None:
    mine, other = await make_sink(), await make_sink()
    await mine.append(STEM, b"mine 1\n", write)
    await other.append(STEM, b"other\n", write)

    with pytest.raises(AppendConflict):
        await mine.append(STEM, b"mine 2\n", write)
    placement = await mine.append(STEM, b"mine 2\n", write)

    assert placement == Placement.of(f"{STEM}.jsonl", len(b"mine 1\nother\n"), b"mine 2\n")
    assert await read_blob(service, container, f"{STEM}.jsonl") == b"mine 1\nother\nmine 2\n"


async def test_racing_creators_never_lose_a_line(
    make_sink: MakeSink, service: BlobServiceClient, container: str
) -> None:
    sinks = [await make_sink() for _ in range(5)]

    async def append_until_it_lands(sink: AzureSink, line: bytes) -> None:
        while True:
            try:
                await sink.append(STEM, line, write)
                return
            except AppendConflict:
                continue

    lines = [f'{{"writer": {n}}}\n'.encode() for n in range(len(sinks))]
    await asyncio.gather(
        *(append_until_it_lands(sink, line) for sink, line in zip(sinks, lines, strict=True))
    )

    stored = await read_blob(service, container, f"{STEM}.jsonl")
    assert sorted(stored.splitlines(keepends=True)) == sorted(lines)


async def test_landed_compares_the_bytes_at_the_placement(make_sink: MakeSink) -> None:
    sink = await make_sink()
    payload = b'{"id": "a"}\n'
    placement = await sink.append(STEM, payload, write)
    assert placement is not None

    assert await sink.landed(placement)
    assert not await sink.landed(Placement.of(placement.name, 0, b'{"id": "b"}\n'))
    assert not await sink.landed(Placement.of(placement.name, len(payload), payload))
    assert not await sink.landed(Placement.of(placement.name, 4, payload))  # runs past the end
    assert not await sink.landed(Placement.of(f"{STEM}.7.jsonl", 0, payload))


async def test_rolls_over_near_the_block_limit_and_a_fresh_sink_continues(
    make_sink: MakeSink, service: BlobServiceClient, container: str
) -> None:
    sink = await make_sink(rollover_blocks=3)
    lines = [f'{{"n": {n}}}\n'.encode() for n in range(7)]
    placements = [await sink.append(STEM, line, write) for line in lines]
    names = [placement.name for placement in placements if placement]

    assert names == [f"{STEM}.jsonl"] * 3 + [f"{STEM}.1.jsonl"] * 3 + [f"{STEM}.2.jsonl"]
    assert await block_count(service, container, f"{STEM}.jsonl") == 3
    assert await read_blob(service, container, f"{STEM}.jsonl") == b"".join(lines[:3])
    assert await read_blob(service, container, f"{STEM}.1.jsonl") == b"".join(lines[3:6])

    fresh = await make_sink(rollover_blocks=3)
    placements = [await fresh.append(STEM, b"late\n", write) for _ in range(3)]
    assert [p.name for p in placements if p] == [f"{STEM}.2.jsonl"] * 2 + [f"{STEM}.3.jsonl"]
    assert await blob_names(service, container) == [
        f"{STEM}.1.jsonl", f"{STEM}.2.jsonl", f"{STEM}.3.jsonl", f"{STEM}.jsonl"
    ]


async def test_unreachable_storage_fails_fast_with_storage_error() -> None:
    closed = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    )
    sink = AzureSink(new_container(), connection_string=closed)
    started = time.monotonic()
    try:
        with pytest.raises(StorageError):
            await sink.start()
        with pytest.raises(StorageError):
            await sink.append(STEM, b"x\n", write)
        with pytest.raises(StorageError):
            await sink.landed(Placement.of(f"{STEM}.jsonl", 0, b"x\n"))
    finally:
        await sink.close()
    assert time.monotonic() - started < 5


async def test_outage_then_recovery(tmp_path: Path) -> None:
    with Azurite(tmp_path / "azurite") as azurite:
        sink = AzureSink(new_container(), connection_string=azurite.connection_string)
        try:
            await sink.start()
            assert await sink.append(STEM, b"before\n", write) is not None

            azurite.stop()
            with pytest.raises(StorageError):
                await sink.append(STEM, b"during\n", write)

            # In-memory Azurite comes back empty: the sink recreates container and blob.
            azurite.start()
            placement = await sink.append(STEM, b"after\n", write)
            assert placement is not None and await sink.landed(placement)
        finally:
            await sink.close()


def test_needs_credentials() -> None:
    with pytest.raises(ValueError, match="connection string"):
        AzureSink("logs")


async def test_a_full_blob_is_a_conflict_and_the_retry_goes_to_the_next_part(
    make_sink: MakeSink, service: BlobServiceClient, container: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 50,000 real blocks take minutes on Azurite: the service's answer is simulated once.
    sink = await make_sink()
    await sink.append(STEM, b"first\n", write)
    full = HttpResponseError(message="The committed block count cannot exceed 50,000.")
    full.error_code = StorageErrorCode.BLOCK_COUNT_EXCEEDS_LIMIT  # type: ignore[attr-defined]

    async def refuse(*args: object, **kwargs: object) -> None:
        raise full

    with monkeypatch.context() as patch:
        patch.setattr(BlobClient, "append_block", refuse)
        with pytest.raises(AppendConflict):
            await sink.append(STEM, b"second\n", write)

    placement = await sink.append(STEM, b"second\n", write)
    assert placement == Placement.of(f"{STEM}.1.jsonl", 0, b"second\n")
    assert await read_blob(service, container, f"{STEM}.jsonl") == b"first\n"


async def test_account_name_and_key_address_the_account_endpoint() -> None:
    sink = AzureSink("logs", account_name="myaccount", account_key="a2V5")
    try:
        service = sink._fs.service_client
        assert service.account_name == "myaccount"
        assert service.url.startswith("https://myaccount.blob.core.windows.net")
    finally:
        await sink.close()
