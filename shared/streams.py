"""Every Redis key and stream field the services share, in one place."""

from __future__ import annotations

DEFAULT_STREAM = "proxy:exchanges"
RECORD_FIELD = "record"
"""The one field of a stream entry; its value is the record as UTF-8 JSON."""

CONSUMER_GROUP = "shippers"
KEYS_PREFIX = "proxy:keys:"
"""Per-user proxy keys, stored hashed (see the proxy's key management)."""


def dead_letter_stream(stream: str) -> str:
    """Where entries that are not valid records go, with the reason."""
    return f"{stream}:dead"


def intents_key(stream: str) -> str:
    """Hash of the shipper's write intents: where each in-flight entry is being appended."""
    return f"{stream}:intents"
