"""Every Redis key and stream field the services share, in one place."""

from __future__ import annotations

DEFAULT_STREAM = "proxy:exchanges"
RECORD_FIELD = "record"
"""The one field of a stream entry; its value is the record as UTF-8 JSON."""

CONSUMER_GROUP = "shippers"
KEYS_TAG = "{proxy:keys}"
"""Every key of the per-user proxy keys shares this hash tag: one Redis Cluster slot, so
a change (entry + version) is one transaction (see ``proxy.keys``)."""
KEYS_ENTRIES = f"{KEYS_TAG}:entries"
"""Hash: key id -> the key's entry as JSON (user, sha256 of the key, created, expires)."""
KEYS_VERSION = f"{KEYS_TAG}:version"
"""Counter, incremented with every change, that replicas poll to reload their snapshot."""
KEYS_LAST_USED = f"{KEYS_TAG}:last-used"
"""Hash: key id -> when a replica last accepted the key (epoch seconds, written in batches)."""


def dead_letter_stream(stream: str) -> str:
    """Where entries that are not valid records go, with the reason."""
    return f"{stream}:dead"


def intents_key(stream: str) -> str:
    """Hash of the shipper's write intents: where each in-flight entry is being appended."""
    return f"{stream}:intents"
