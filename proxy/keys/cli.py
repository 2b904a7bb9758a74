"""``python -m proxy keys create | list | revoke``: manage the per-user keys in Redis.

``create`` prints the new key alone on stdout (so ``KEY=$(... keys create --user U)``
works); everything else it says goes to stderr. Exit status: 0 done, 1 no such key,
2 bad configuration or Redis unreachable (one line on stderr, never a secret).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from proxy.keys.entry import KEY_PREFIX, KeyEntry, new_key, sha256_hex
from proxy.keys.store import KeysUnavailable, RedisKeys, redis_errors
from proxy.settings import ProxySettings
from shared.redis_client import RedisClient, connect

EXIT_NOT_FOUND = 1
EXIT_CONFIG = 2


class CommandError(Exception):
    """A one-line message for stderr and the exit status that goes with it."""

    def __init__(self, message: str, status: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.status = status


def add_parser(commands: Any) -> None:
    """Register ``keys`` and its subcommands on the ``python -m proxy`` parser."""
    keys = commands.add_parser("keys", help="manage per-user proxy keys stored in Redis")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key for a user; prints it once")
    create.add_argument("--user", required=True, help="the user_id the key stands for")
    create.add_argument(
        "--expires-in-days", type=float, default=None, help="refuse the key after this long"
    )
    listing = actions.add_parser("list", help="users, key ids, created, last used (no keys)")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    revoke = actions.add_parser("revoke", help="revoke a key by its id or by the key itself")
    revoke.add_argument("key", help="a key id (as `list` shows it) or the key")


def _safe_url(url: str) -> str:
    # Never print a password: keep scheme, host, port and database only.
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _connect(settings: ProxySettings) -> RedisClient:
    try:
        return connect(settings, timeout_s=settings.proxy_redis_timeout_s)
    except ValueError as exc:
        raise CommandError(
            "REDIS_URL is not a valid Redis URL (redis://, rediss:// or unix://)"
        ) from exc


def _when(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "never"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _date(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


async def _create(keys: RedisKeys, user: str, expires_in_days: float | None) -> None:
    if not user.strip():
        raise CommandError("--user must not be empty")
    expires_at = None
    if expires_in_days is not None:
        if expires_in_days <= 0:
            raise CommandError("--expires-in-days must be positive")
        expires_at = datetime.now(UTC) + timedelta(days=expires_in_days)
    key, entry = new_key(user.strip(), expires_at)
    await keys.add(entry)
    expires = "never" if expires_at is None else f"{_date(expires_at)} UTC"
    print(
        f"created key {entry.key_id} for user {entry.user_id} (expires: {expires}); "
        "it is shown only this once:",
        file=sys.stderr,
    )
    print(key, flush=True)


def _row(entry: KeyEntry, last_used_s: float | None) -> dict[str, Any]:
    return {
        "key_id": entry.key_id,
        "user_id": entry.user_id,
        "prefix": entry.prefix,
        "created_at": entry.created_at.isoformat(),
        "last_used_at": (
            None if last_used_s is None else datetime.fromtimestamp(last_used_s, UTC).isoformat()
        ),
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
    }


async def _list(keys: RedisKeys, as_json: bool) -> None:
    _, entries = await keys.snapshot()
    last_used = await keys.last_used()
    entries.sort(key=lambda entry: (entry.user_id, entry.created_at))
    if as_json:
        print(json.dumps([_row(entry, last_used.get(entry.key_id)) for entry in entries]))
        return
    now = datetime.now(UTC)
    table = [("KEY ID", "USER", "KEY BEGINS WITH", "CREATED (UTC)", "LAST USED", "EXPIRES")]
    table += [
        (
            entry.key_id,
            entry.user_id,
            f"{entry.prefix}...",
            _date(entry.created_at),
            _when(last_used.get(entry.key_id)),
            _date(entry.expires_at) + (" (expired)" if entry.expired(now) else ""),
        )
        for entry in entries
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
    print(f"{len(entries)} key(s)", file=sys.stderr)


def _matches(entry: KeyEntry, given: str) -> bool:
    shown_prefix = given.rstrip(".…-")
    return (
        given == entry.key_id
        or shown_prefix == f"{KEY_PREFIX}{entry.key_id}"
        or sha256_hex(given) == entry.sha256
    )


async def _revoke(keys: RedisKeys, given: str) -> None:
    _, entries = await keys.snapshot()
    found = [entry for entry in entries if _matches(entry, given.strip())]
    if not found or not await keys.remove(found[0].key_id):
        # Never echo ``given``: it may be a key.
        raise CommandError("no key has that id or value", EXIT_NOT_FOUND)
    entry = found[0]
    print(f"revoked key {entry.key_id} of user {entry.user_id}")


async def _run(args: argparse.Namespace, settings: ProxySettings) -> None:
    redis = _connect(settings)
    keys = RedisKeys(redis)
    try:
        try:
            with redis_errors("connecting"):
                await redis.ping()
        except KeysUnavailable as exc:
            raise CommandError(
                f"Redis at {_safe_url(settings.redis_url)} is unreachable "
                f"({type(exc.__cause__).__name__})"
            ) from exc
        if args.keys_command == "create":
            await _create(keys, args.user, args.expires_in_days)
        elif args.keys_command == "list":
            await _list(keys, args.json)
        else:
            await _revoke(keys, args.key)
    finally:
        await redis.aclose()


def run(args: argparse.Namespace, settings: ProxySettings) -> int:
    """Run one ``keys`` subcommand; returns the exit status."""
    try:
        asyncio.run(_run(args, settings))
    except CommandError as exc:
        print(f"proxy keys: {exc}", file=sys.stderr)
        return exc.status
    except KeysUnavailable as exc:
        print(f"proxy keys: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0
