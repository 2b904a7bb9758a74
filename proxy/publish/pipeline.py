"""The publisher, the spool and the drainer, built together and stopped in order."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from proxy.metrics import Metrics
from proxy.publish.deferred import DeferredRecords
from proxy.publish.drainer import Drainer
from proxy.publish.publisher import Publisher
from proxy.publish.reservations import Reservations
from proxy.publish.spool import Spool
from proxy.settings import ProxySettings
from shared.logs import log_event
from shared.redis_client import RedisClient, connect

logger = logging.getLogger(__name__)


def writer_name() -> str:
    """``host-pid-random``, in the characters a segment name allows: unique per process."""
    host = re.sub(r"[^A-Za-z0-9.]", ".", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class Publishing:
    """Everything between a finished record and the stream."""

    redis: RedisClient
    """Its own client, without automatic retries: a retried XADD could land twice."""
    spool: Spool
    publisher: Publisher
    drainer: Drainer
    reservations: Reservations
    """Room in the spool for the records of admitted calls (``SPOOL_FULL_POLICY=reject``)."""
    deferred: DeferredRecords
    """Finished exchanges' records, built and queued a moment after their answer."""

    async def start(self) -> None:
        """Start writing, publishing, and draining what an earlier run left in the spool."""
        await self.spool.check_writable()  # /ready tells the truth from the first request
        self.spool.start()
        self.publisher.start()
        self.drainer.start()
        log_event(
            logger,
            "spool_opened",
            folder=str(self.spool.folder),
            writer=self.spool.writer,
            policy=self.spool.full_policy,
        )

    async def stop(self, drain_timeout_s: float) -> None:
        """Publish or spool every queued record, make the spool durable, let go of it.

        Deferred records are built and queued first; then the drainer stops, so the
        publisher is never held paused; then the publisher empties its queue (into Redis
        while it answers, else into the spool); then the spool writes its last group and
        releases its segments for the next run.
        """
        self.deferred.stop()
        await self.drainer.stop()
        await self.publisher.stop(drain_timeout_s)
        await self.spool.close()
        await self.redis.aclose()


def build_publishing(settings: ProxySettings, metrics: Metrics) -> Publishing:
    """The publishing pipeline for ``settings`` (not started)."""
    redis = connect(
        settings,
        timeout_s=settings.proxy_redis_timeout_s,
        connect_timeout_s=min(settings.proxy_redis_timeout_s, settings.publish_timeout_s),
        bounded_by_caller=True,  # the publisher and the drainer bound each round trip
    )
    spool = Spool(
        Path(settings.spool_dir),
        writer_name(),
        metrics,
        max_bytes=settings.spool_max_bytes,
        full_policy=settings.spool_full_policy,
    )
    publisher = Publisher(
        redis,
        settings.redis_stream,
        metrics,
        spool,
        queue_size=settings.publish_queue_size,
        batch_size=settings.publish_batch_size,
        timeout_s=settings.publish_timeout_s,
        replica_wait=settings.replica_wait,
    )
    drainer = Drainer(
        redis,
        settings.redis_stream,
        spool,
        publisher,
        metrics,
        interval_s=settings.spool_drain_interval_s,
        timeout_s=settings.publish_timeout_s,
        replica_wait=settings.replica_wait,
    )
    reservations = Reservations(spool, publisher, settings.record_max_bytes)
    return Publishing(redis, spool, publisher, drainer, reservations, DeferredRecords())
