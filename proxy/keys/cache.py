"""A replica's in-memory snapshot of the keys, kept fresh in the background.

How snapshots, versions and outages fit together: ``proxy.keys``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from proxy.auth import KeyStore, StaticKeyStore
from proxy.keys.entry import KeyEntry
from proxy.keys.store import KeysUnavailable, RedisKeys
from proxy.settings import ProxySettings
from shared.logs import log_event
from shared.redis_client import RedisClient

logger = logging.getLogger(__name__)


def key_store_for(settings: ProxySettings, redis: RedisClient) -> tuple[KeyStore, KeyCache | None]:
    """What ``AUTH_MODE=keys`` looks keys up in: ``PROXY_API_KEYS``, plus Redis via a cache."""
    static = StaticKeyStore(settings.static_key_pairs)
    if settings.auth_mode != "keys":
        return static, None
    cache = KeyCache(RedisKeys(redis), static, settings.keys_refresh_interval_s)
    return cache, cache


class KeyCache:
    """Answers ``user_for`` from memory: the static keys first, then the Redis snapshot."""

    def __init__(
        self,
        keys: RedisKeys,
        static: KeyStore,
        refresh_interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._static = static
        self._refresh_interval_s = refresh_interval_s
        self._clock = clock
        self._by_digest: dict[bytes, KeyEntry] = {}
        self._version: int | None = None
        self._used: dict[str, float] = {}
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        """Whether a snapshot was ever loaded from Redis."""
        return self._version is not None

    def __len__(self) -> int:
        return len(self._by_digest)

    async def user_for(self, digest: bytes) -> str | None:
        user = await self._static.user_for(digest)
        if user is not None:
            return user
        # A dictionary keyed by the digest: the lookup's timing depends only on the digest
        # of what the caller sent, never on a stored key.
        entry = self._by_digest.get(digest)
        if entry is None:
            return None
        now = self._clock()
        if entry.expired(datetime.fromtimestamp(now, UTC)):
            return None
        self._used[entry.key_id] = now
        return entry.user_id

    async def refresh(self) -> bool:
        """Reload the snapshot if the version moved; ``True`` when it was reloaded."""
        version = await self._keys.version()
        if version == self._version:
            return False
        version, entries = await self._keys.snapshot()
        self._by_digest = {bytes.fromhex(entry.sha256): entry for entry in entries}
        previous, self._version = self._version, version
        log_event(logger, "keys_loaded", keys=len(entries), version=version, previous=previous)
        return True

    async def flush_last_used(self) -> None:
        """Write the last-used times noted since the previous flush (kept on failure)."""
        used, self._used = self._used, {}
        try:
            await self._keys.mark_used(used)
        except KeysUnavailable:
            for key_id, at in used.items():
                self._used[key_id] = max(at, self._used.get(key_id, 0.0))
            raise

    async def start(self, first_load_timeout_s: float) -> None:
        """Load the keys, then refresh and flush every ``refresh_interval_s`` in the background.

        The first load is awaited so keys work from the first request; during an outage
        the proxy starts anyway and the background refresh loads them when Redis is back.
        """
        try:
            await asyncio.wait_for(self.refresh(), first_load_timeout_s)
        except (KeysUnavailable, TimeoutError) as exc:
            self._failing = True
            log_event(logger, "keys_refresh_failed", logging.WARNING, error=str(exc) or "timeout")
        self._task = asyncio.create_task(self._run(), name="keys-refresh")

    async def stop(self, timeout_s: float) -> None:
        """Stop refreshing, then try once, within ``timeout_s``, to write last-used times."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(KeysUnavailable, TimeoutError):
            await asyncio.wait_for(self.flush_last_used(), timeout_s)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval_s)
            await self._iteration()

    async def _iteration(self) -> None:
        try:
            await self.refresh()
            await self.flush_last_used()
        except KeysUnavailable as exc:
            if not self._failing:
                # Logged once per outage: the snapshot in memory keeps serving meanwhile.
                log_event(logger, "keys_refresh_failed", logging.WARNING, error=str(exc))
            self._failing = True
            return
        except Exception:
            logger.exception("keys_refresh_error")
            return
        if self._failing:
            log_event(logger, "keys_refresh_recovered", version=self._version)
        self._failing = False
