"""Per-user proxy keys managed in Redis (``python -m proxy keys ...``).

The protocol, told once:

- **Stored hashed.** A key is ``pk-<key id>-<48 hex chars>`` (192 random bits). Redis holds
  only its sha256, beside the user, the key id and the dates (``shared.streams.KEYS_*``,
  all under one hash tag, so every change is one transaction on one Redis Cluster slot).
  A fast hash is the right one here: slow hashes (bcrypt, argon2) protect guessable
  passwords, but nobody can search 192 random bits, and a fast hash lets a replica look
  the key up in a dictionary instead of spending ~100 ms of CPU per request.
- **Every change bumps a version.** ``create`` and ``revoke`` write the entry and
  ``INCR`` the version in one ``MULTI``.
- **Replicas keep a snapshot.** Each replica holds every key's digest in memory and polls
  the version every ``KEYS_REFRESH_INTERVAL_S``; when it changed, the replica reloads the
  whole set atomically. A request is a dictionary lookup, never a Redis round trip, and a
  change reaches every replica within about one interval.
- **Outages.** When Redis does not answer, the replica keeps the last snapshot it loaded:
  known keys keep working, revoked keys stay revoked. A replica that starts during an
  outage knows only ``PROXY_API_KEYS`` until Redis is back.
- **Last used** is noted in memory on each accepted request and written to Redis in one
  batch per interval.
"""
