"""The chaos scenarios: each builds its own stack, drives load, injects one fault, counts.

Every scenario ends the same way (``_finish``): the load stops, the stack is given time
to settle (stream empty, nothing pending, no spool segment left), and the ids in the
files are compared with the ``X-Proxy-Record-Id`` of every call that succeeded. The time
to drain runs from the end of the load to that point.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.chaos.diagnosis import describe_stack
from tests.chaos.load import Load, Tally
from tests.chaos.stack import Service, Stack
from tests.chaos.verify import Outcome, judge, wait_until_landed
from tests.support.waiting import wait_until

THREADS = 4
OUTAGE_S = 3.0
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _settled(stack: Stack) -> Callable[[], bool]:
    return lambda: stack.backlog() == 0 and stack.spooled_segments() == 0


def _proxy_total(proxies: list[Service], name: str) -> int:
    total = 0
    for proxy in proxies:
        if proxy.process is not None and proxy.process.poll() is None:
            total += int(proxy.metric(name))
    return total


def _finish(
    stack: Stack, title: str, tally: Tally, notes: str = "", recovery_s: float = 0.0,
    fault_events: int = 0, **extra: int,
) -> Outcome:
    """Wait for the stack to settle and judge; ``recovery_s``: time already spent recovering."""
    settling = wait_until_landed(
        stack.files, tally.succeeded_ids, _settled(stack),
        describe=lambda: f"backlog {stack.backlog()}\n{describe_stack(stack)}",
    )
    outcome = judge(title, tally.calls, tally.succeeded_ids, settling.seen,
                    recovery_s + settling.drain_s)
    outcome.stuck = settling.stuck
    spooled = _proxy_total(stack.proxies, "proxy_records_spooled_total")
    outcome.spooled = extra.get("spooled", spooled)
    outcome.ambiguous = _proxy_total(stack.proxies, "proxy_records_ambiguous_total")
    outcome.fault_events = fault_events
    failed = tally.calls - len(tally.succeeded_ids)
    outcome.notes = "; ".join(filter(None, [
        notes, f"{failed} calls failed" if failed else "", "not settled" if settling.stuck else "",
    ]))
    return outcome


def shipper_kills(workdir: Path) -> Outcome:
    """Two shippers; one of them killed with SIGKILL (and restarted) 12 times under load."""
    kills = 12
    with Stack(workdir) as stack:
        proxy = stack.add_proxy()
        shippers = [stack.add_shipper(), stack.add_shipper()]
        with Load([proxy.url], threads=THREADS, max_calls=6000) as load:
            load.wait_calls(200)
            for number in range(kills):
                time.sleep(0.5)
                victim = shippers[number % 2]
                victim.kill()
                victim.start()
            tally = load.stop()
        title = "1. kill -9 a shipper x12, two shippers"
        return _finish(stack, title, tally, f"{kills} kills", fault_events=kills)


def redis_outage(workdir: Path) -> Outcome:
    """Redis stopped for a few seconds under load, then started again."""
    with Stack(workdir) as stack:
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=6000) as load:
            load.wait_calls(200)
            stack.redis.shutdown()
            time.sleep(OUTAGE_S)
            stack.redis.start()
            time.sleep(1.0)
            tally = load.stop()
        spooled = _proxy_total(stack.proxies, "proxy_records_spooled_total")
        title = f"2. Redis stopped {OUTAGE_S:.0f} s under load"
        return _finish(stack, title, tally, fault_events=spooled)


def redis_restart_with_backlog(workdir: Path) -> Outcome:
    """No shipper while load builds a backlog; Redis restarted under load, then crashed
    (SIGKILL) once the proxy is idle; AOF must bring the whole backlog back."""
    with Stack(workdir) as stack:
        proxy = stack.add_proxy()
        with Load([proxy.url], threads=THREADS, max_calls=800) as load:
            load.wait_calls(300)
            stack.redis.shutdown()
            stack.redis.start()
            load.wait_calls(800)
            tally = load.stop()
        spooled = int(proxy.metric("proxy_records_spooled_total"))
        with contextlib.suppress(AssertionError):  # what is left is in the outcome
            wait_until(lambda: proxy.metric("proxy_spool_records") <= 0, 30, interval_s=0.1)
        time.sleep(1.5)  # appendfsync everysec: the last writes reach the disk
        backlog = stack.backlog()
        stack.redis.stop()  # SIGKILL
        stack.redis.start()
        restored = stack.backlog_when_up()
        stack.add_shipper()
        stack.add_shipper()
        note = f"backlog {backlog} before the crash, {restored} after"
        title = "3. Redis restarted with a backlog (AOF)"
        return _finish(stack, title, tally, note, fault_events=restored, spooled=spooled)


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE):
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(a))


def storage_outage(workdir: Path) -> Outcome:
    """The log folder replaced by a file for a few seconds under load (root ignores chmod)."""
    with Stack(workdir) as stack:
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=6000) as load:
            load.wait_calls(200)
            blocker = stack.log_dir.with_name("logs.blocker")
            blocker.write_text("storage unavailable")
            stack.log_dir.mkdir(parents=True, exist_ok=True)  # a slow shipper may not have yet
            # Swapped in one step: a shipper that re-creates its folder finds no gap.
            _exchange(stack.log_dir, blocker)
            time.sleep(OUTAGE_S)
            # On a busy machine the shipper may not have tried a write yet: the outage
            # lasts until it has met it at least once.
            wait_until(lambda: retries(stack) > 0, 60, "a write to meet the outage")
            _exchange(stack.log_dir, blocker)
            time.sleep(1.0)
            tally = load.stop()
        retries_seen = retries(stack)
        title = f"4. local storage unavailable {OUTAGE_S:.0f} s"
        return _finish(stack, title, tally, f"{retries_seen} storage retries",
                       fault_events=retries_seen)


def retries(stack: Stack) -> int:
    """The storage retries the stack's shippers have logged so far."""
    return sum(shipper.events("storage_retry") for shipper in stack.shippers)


def azure_outage(workdir: Path) -> Outcome:
    """Azure Blob storage (Azurite, data kept on disk) stopped for a few seconds under load."""
    with Stack(workdir, storage="azure") as stack:
        assert stack.azurite is not None
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=6000) as load:
            load.wait_calls(200)
            stack.azurite.stop()
            time.sleep(OUTAGE_S)
            wait_until(lambda: retries(stack) > 0, 60, "a write to meet the outage")
            stack.azurite.start()
            time.sleep(1.0)
            tally = load.stop()
        retries_seen = retries(stack)
        title = f"4b. Azure storage (Azurite) stopped {OUTAGE_S:.0f} s"
        return _finish(stack, title, tally, f"{retries_seen} storage retries",
                       fault_events=retries_seen)


def proxy_killed_with_spool(workdir: Path) -> Outcome:
    """Redis down, the proxy spools; SIGKILL it once its spool is written; Redis back;
    the proxy restarted on the same folder drains the dead process's segments."""
    with Stack(workdir) as stack:
        proxy = stack.add_proxy()
        stack.add_shipper()
        stack.redis.shutdown()
        with Load([proxy.url], threads=THREADS, max_calls=600) as load:
            load.wait_calls(600)
            tally = load.stop()
        # SIGKILL loses what is only in memory; wait until every answered call is on disk.
        wait_until(lambda: proxy.metric("proxy_records_spooled_total") >= len(tally.succeeded_ids),
                   20, "the spool to take every record")
        spooled = int(proxy.metric("proxy_records_spooled_total"))
        segments = stack.spooled_segments()
        proxy.kill()
        stack.redis.start()
        proxy.start()
        note = f"{spooled} records in {segments} segment(s) at the kill"
        return _finish(stack, "5. proxy kill -9 with a full spool, restarted", tally, note,
                       fault_events=segments, spooled=spooled)


def proxy_host_lost(workdir: Path) -> Outcome:
    """Redis down, the proxy spools; its host is lost for good (SIGKILL, never restarted).
    Its spool folder, carried off the dead disk, is replayed with ``shipper replay``
    twice (idempotent) while a shipper runs and Redis is back."""
    with Stack(workdir) as stack:
        proxy = stack.add_proxy()
        stack.add_shipper()
        stack.redis.shutdown()
        with Load([proxy.url], threads=THREADS, max_calls=600) as load:
            load.wait_calls(600)
            tally = load.stop()
        wait_until(lambda: proxy.metric("proxy_records_spooled_total") >= len(tally.succeeded_ids),
                   20, "the spool to take every record")
        spooled = int(proxy.metric("proxy_records_spooled_total"))
        proxy.kill()
        rescued = workdir / "rescued-spool"
        shutil.move(stack.spool_dir, rescued)
        stack.redis.start()
        started = time.monotonic()
        for _ in range(2):
            replay = subprocess.run(
                [sys.executable, "-m", "shipper", "replay", "--spool", str(rescued),
                 "--no-progress"],
                cwd=workdir, env=stack.env(), capture_output=True, text=True, timeout=120,
            )
            assert replay.returncode == 0, replay.stdout + replay.stderr
        return _finish(stack, "6. proxy host lost, spool replayed", tally, "replayed twice",
                       recovery_s=time.monotonic() - started, fault_events=spooled,
                       spooled=spooled)


def redis_hang(workdir: Path) -> Outcome:
    """Redis frozen (SIGSTOP) for a few seconds under load, then resumed (SIGCONT)."""
    with Stack(workdir) as stack:
        proxy = stack.add_proxy()
        stack.add_shipper()
        with Load([proxy.url], threads=THREADS, max_calls=6000) as load:
            load.wait_calls(200)
            stack.redis.pause()
            time.sleep(OUTAGE_S)
            stack.redis.resume()
            time.sleep(1.0)
            tally = load.stop()
        ambiguous = _proxy_total(stack.proxies, "proxy_records_ambiguous_total")
        title = f"7. Redis hung (SIGSTOP) {OUTAGE_S:.0f} s"
        return _finish(stack, title, tally, fault_events=ambiguous)


@dataclass(frozen=True)
class Scenario:
    key: str
    run: Callable[[Path], Outcome]
    every_call_succeeds: bool = True


SCENARIOS = [
    Scenario("shipper_kills", shipper_kills),
    Scenario("redis_outage", redis_outage),
    Scenario("redis_restart_with_backlog", redis_restart_with_backlog),
    Scenario("storage_outage", storage_outage),
    Scenario("azure_outage", azure_outage),
    Scenario("proxy_killed_with_spool", proxy_killed_with_spool),
    Scenario("proxy_host_lost", proxy_host_lost),
    Scenario("redis_hang", redis_hang),
]
