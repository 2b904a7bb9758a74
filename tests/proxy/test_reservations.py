"""``SPOOL_FULL_POLICY=reject``'s accounting: a record's room is given back once it is
written, into Redis or the spool, or counted as lost, and not before."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from proxy.metrics import Metrics
from proxy.publish.publisher import Publisher
from proxy.publish.reservations import Reservations
from proxy.publish.spool import Spool
from tests.factories import make_pending
from tests.support.ports import free_port
from tests.support.waiting import async_wait_until

RECORD_MAX_BYTES = 10_000


def _pipeline(redis_url: str, folder: Path, max_bytes: int = 1 << 26) -> tuple[
    Publisher, Spool, Reservations
]:
    metrics = Metrics()
    spool = Spool(folder, "w", metrics, max_bytes=max_bytes, full_policy="reject")
    redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=0.3)
    publisher = Publisher(
        redis, "test:reservations", metrics, spool, queue_size=100, batch_size=10, timeout_s=0.3
    )
    return publisher, spool, Reservations(spool, publisher, RECORD_MAX_BYTES)


async def test_the_room_of_a_published_record_is_given_back_once_it_is_in_redis(
    redis_url: str, tmp_path: Path
) -> None:
    publisher, spool, reservations = _pipeline(redis_url, tmp_path)
    pending = make_pending(5)
    for record in pending:
        reservations.hold(record)

    assert reservations.reserved_bytes == sum(len(p.payload) + 1 for p in pending)
    spool.start()
    publisher.start()
    for record in pending:
        publisher.submit(record)
    await async_wait_until(lambda: reservations.reserved_bytes == 0)
    await publisher.stop(timeout_s=2)
    await spool.close()
    assert spool.records == 0


async def test_the_room_of_a_spooled_record_is_given_back_once_it_is_written(
    tmp_path: Path,
) -> None:
    _, spool, reservations = _pipeline(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    pending = make_pending(3)
    for record in pending:
        reservations.hold(record)

    spool.append(pending)  # buffered, not written yet: the room stays set aside
    assert reservations.reserved_bytes == sum(len(p.payload) + 1 for p in pending)
    spool.start()
    await spool.flush()
    assert reservations.reserved_bytes == 0
    assert spool.records == 3
    await spool.close()


async def test_the_room_of_a_lost_record_is_given_back_and_only_once(tmp_path: Path) -> None:
    _, spool, reservations = _pipeline(f"redis://127.0.0.1:{free_port()}/0", tmp_path, 10)
    [record] = make_pending(1)
    reservations.hold(record)

    spool.append([record])  # larger than the whole spool: lost, and counted
    assert reservations.reserved_bytes == 0
    record.settled()  # a second settling gives nothing back twice
    assert reservations.reserved_bytes == 0


async def test_an_ended_exchange_keeps_room_until_its_deferred_record_holds_its_own(
    tmp_path: Path,
) -> None:
    _, _, reservations = _pipeline(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    assert reservations.admit()
    release = reservations.carry()  # the exchange ended; its record is built later
    reservations.release()  # the exchange's own room, given back as it returns

    assert reservations.reserved_bytes == RECORD_MAX_BYTES + 1
    [record] = make_pending(1)
    reservations.hold(record)
    release()
    assert reservations.reserved_bytes == len(record.payload) + 1
    record.settled()
    assert reservations.reserved_bytes == 0
