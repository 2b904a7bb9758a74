"""Per-user proxy keys managed in Redis (``python -m proxy keys ...``).

A key is ``pk-<key id>-<48 hex chars>``; Redis holds only its sha256, under one hash tag
(``shared.streams.KEYS_*``). ``create`` and ``revoke`` bump a version in the same
``MULTI``; each replica holds every digest in memory, reloads the set when the version
moves, and keeps its last set through a Redis outage, so a request never waits on Redis.
Why, and what an operator does with keys: docs/keys.md.
"""
