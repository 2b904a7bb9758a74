"""One timer for every exchange: each still running after the delay is watched, once."""

from __future__ import annotations

import asyncio

from proxy.client_watch import ClientWatch


async def test_an_exchange_still_running_is_watched_and_one_that_ended_is_not() -> None:
    watch = ClientWatch(after_s=0.02)
    watched: list[str] = []
    watch.add("ended", lambda: watched.append("ended"))
    watch.add("long", lambda: watched.append("long"))
    watch.discard("ended")

    await asyncio.sleep(0.05)
    assert watched == ["long"]
    await asyncio.sleep(0.05)
    assert watched == ["long"]  # once


async def test_each_exchange_waits_its_own_delay_from_when_it_was_added() -> None:
    watch = ClientWatch(after_s=0.3)
    watched: list[str] = []
    watch.add("first", lambda: watched.append("first"))
    await asyncio.sleep(0.15)
    watch.add("second", lambda: watched.append("second"))

    await asyncio.sleep(0.2)  # 350 ms after the first, 200 ms after the second
    assert watched == ["first"]
    await asyncio.sleep(0.3)
    assert watched == ["first", "second"]


async def test_the_timer_is_set_again_for_exchanges_added_after_it_fired() -> None:
    watch = ClientWatch(after_s=0.01)
    watched: list[int] = []
    for number in range(3):
        watch.add(number, lambda number=number: watched.append(number))
        await asyncio.sleep(0.03)
    assert watched == [0, 1, 2]
