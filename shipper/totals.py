"""The shipper's counters: one object per process, logged with ``shipper_stopped``.

The worker, its delivery and ``shipper replay`` add to it as things happen, so a
metrics endpoint can read it at any time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Totals:
    """Counters since start; names end in ``_total``."""

    records_shipped_total: int = 0
    bytes_shipped_total: int = 0
    batches_shipped_total: int = 0
    records_already_landed_total: int = 0
    entries_claimed_total: int = 0
    entries_dead_lettered_total: int = 0
    storage_retries_total: int = 0
    append_conflicts_total: int = 0
    redis_errors_total: int = 0
    intents_forgotten_total: int = 0


def totals_fields(totals: Totals) -> dict[str, int]:
    """The counters as log fields."""
    return asdict(totals)
