"""The shipper's settings, built once at start-up from the environment and ``.env``.

Public names (docs/configuration.md): ``STORAGE_TYPE``, ``LOCAL_LOG_DIR`` and the
``AZURE_STORAGE_*`` variables. The ``SHIPPER_*`` variables tune the worker loop.
"""

from __future__ import annotations

import os
import secrets
import socket

from pydantic import Field

from shared.settings import StorageSettings

MIB = 1024 * 1024


def default_consumer_name() -> str:
    """``host-pid-random``: unique per process, readable in ``shipper status``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class ShipperSettings(StorageSettings):
    """Everything the shipper reads from its environment."""

    azure_rollover_blocks: int = Field(default=49_000, ge=1, le=50_000)
    """An append blob with this many blocks continues in ``{stem}.1.jsonl``, ``.2.jsonl``,
    ... (Azure's limit is 50,000)."""

    # Each batch costs a few fsyncs per file and Redis round trips: larger ones ship faster
    # (2 KB records: about 48,000/s at 8 MiB, 52,000/s at 16 MiB) for ~20 MiB more RSS.
    shipper_batch_max_records: int = Field(default=10_000, ge=1)
    """At most this many entries per read and per batch; fewer when, at the size of the
    records last read, they would pass ``SHIPPER_BATCH_MAX_BYTES``."""
    shipper_batch_max_bytes: int = Field(default=16 * MIB, ge=1024)
    """A batch is split beyond this size."""
    shipper_block_ms: int = Field(default=2000, ge=10)
    """How long one idle read waits for new entries (a new entry is read at once)."""
    shipper_claim_idle_ms: int = Field(default=30_000, ge=100)
    """Entries pending this long with another consumer are claimed (``XAUTOCLAIM``)."""
    shipper_consumer_name: str = Field(default_factory=default_consumer_name, min_length=1)
    """This process's consumer name in the group; must be unique per process."""
    shipper_stale_consumer_s: float = Field(default=3600.0, gt=0)
    """Consumers idle this long with nothing pending are removed from the group."""
    shipper_shutdown_timeout_s: float = Field(default=20.0, gt=0)
    """On SIGTERM, how long to finish the batch in hand."""
    shipper_retry_max_s: float = Field(default=30.0, gt=0)
    """The cap of the jittered exponential backoff for storage and Redis outages."""
    shipper_metrics_host: str = "127.0.0.1"
    """Where ``/metrics``, ``/health`` and ``/ready`` listen; loopback by default (compose
    sets 0.0.0.0 on its own network, published nowhere)."""
    shipper_metrics_port: int = Field(default=9101, ge=0, le=65535)
    """The port of ``/metrics``, ``/health`` and ``/ready`` (docs/operations.md); 0 turns
    them off."""
    shipper_ready_failing_s: float = Field(default=60.0, gt=0)
    """``/ready`` answers 503 once storage or Redis has failed for longer than this."""
    shipper_redis_timeout_s: float = Field(default=5.0, gt=0)
    """Every Redis call of the shipper ends within this plus ``SHIPPER_BLOCK_MS``
    (docs/delivery.md, "Partitions")."""
    shipper_dead_letter_max_entries: int = Field(default=100_000, ge=1)
    """The cap of ``{REDIS_STREAM}:dead``; the oldest entries are cut and counted in
    ``{REDIS_STREAM}:dead:cut``."""
    shipper_shipped_ids_retention_s: float = Field(default=3 * 24 * 3600.0, gt=0)
    """How long a landed record id is remembered, so that a copy of it arriving later is
    not written again (docs/delivery.md)."""

    @property
    def claim_interval_s(self) -> float:
        """How often to look for entries left by dead shippers: well within the idle time."""
        return min(max(self.shipper_claim_idle_ms / 4000, 0.2), 15.0)
