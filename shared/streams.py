"""Every Redis key and stream field the services share, in one place.

Every key the shipper uses is ``{REDIS_STREAM}:<suffix>``, so on Redis Cluster a
hash-tagged stream name (``{proxy}:exchanges``) puts them all in one slot, as the
shipper's scripts require (docs/operations.md, "Redis Cluster").
"""

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
    """Where entries that are not valid records, or can never be written, go with the reason."""
    return f"{stream}:dead"


def dead_letter_cut_key(stream: str) -> str:
    """Counter of dead-letter entries cut to keep the dead-letter stream within its cap."""
    return f"{stream}:dead:cut"


def intents_key(stream: str) -> str:
    """Hash of the shipper's write intents: every placement each in-flight record was given."""
    return f"{stream}:intents"


def shipped_key(stream: str) -> str:
    """Sorted set of the record ids that landed (score: when, in ms), for a retention window."""
    return f"{stream}:shipped"


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis Cluster hashes (``{...}``), or None when it has no tag."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]
