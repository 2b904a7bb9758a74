"""Target file names: ``{user_id}_{model}_{YYYYMMDD}.jsonl`` (docs/record.md, "File names").

Each of ``user_id`` and ``model`` is one path component: every character outside
``A-Z a-z 0-9 . -`` is percent-encoded as UTF-8, and a part made only of dots is
encoded whole. A name therefore always splits back into its parts on ``_``, and
no name can leave the log folder.

A part whose encoding is longer than ``MAX_PART_BYTES`` is capped: its first 80
encoded bytes (never cutting a ``%XX``), then ``~``, then the first 12 hex digits
of the sha256 of the whole part (UTF-8). ``~`` is itself encoded everywhere else,
so a capped part is recognisable, and every name fits every file system (255
bytes) and blob store.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import unquote

SUFFIX = ".jsonl"
UNKNOWN_MODEL = "unknown"
MAX_PART_BYTES = 96
CAPPED_PREFIX_BYTES = 80
CAP_MARK = "~"
DIGEST_HEX_CHARS = 12

_SAFE = frozenset(string.ascii_letters + string.digits + ".-")
_NAME = re.compile(
    r"^(?:(?P<user>[^_]+)_)?(?P<model>[^_]+)_(?P<day>\d{8})(?:\.(?P<part>[1-9]\d*))?\.jsonl$"
)
_CAPPED = re.compile(r"^(?P<prefix>[^~]*)~(?P<digest>[0-9a-f]{12})$")


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


def encode_component(value: str) -> str:
    """Percent-encode ``value`` so that it is one safe path component (not capped)."""
    if value.strip(".") == "":
        return "".join(_percent(char) for char in value)
    return "".join(char if char in _SAFE else _percent(char) for char in value)


def part_digest(value: str) -> str:
    """The 12 hex digits a capped part ends with: sha256 of the whole value (UTF-8)."""
    return hashlib.sha256(value.encode()).hexdigest()[:DIGEST_HEX_CHARS]


def encode_part(value: str) -> str:
    """``encode_component``, capped at ``MAX_PART_BYTES`` (docs/record.md, "File names")."""
    encoded = encode_component(value)
    if len(encoded) <= MAX_PART_BYTES:
        return encoded
    prefix = encoded[:CAPPED_PREFIX_BYTES]
    # A '%' among the last two kept characters starts a %XX that the cut would split.
    last_percent = prefix.rfind("%", CAPPED_PREFIX_BYTES - 2)
    if last_percent >= 0:
        prefix = prefix[:last_percent]
    return f"{prefix}{CAP_MARK}{part_digest(value)}"


def file_stem(user_id: str | None, model: str | None, timestamp: datetime) -> str:
    """The name without suffix, from the record's user, model and UTC date."""
    day = timestamp.astimezone(UTC).strftime("%Y%m%d")
    model_part = encode_part(model) if model else UNKNOWN_MODEL
    if user_id:
        return f"{encode_part(user_id)}_{model_part}_{day}"
    return f"{model_part}_{day}"


def file_name(stem: str, part: int = 0) -> str:
    """``stem.jsonl`` for the first file, ``stem.N.jsonl`` after the N-th rollover."""
    if part < 0:
        raise ValueError("part must be >= 0")
    return f"{stem}.{part}{SUFFIX}" if part else f"{stem}{SUFFIX}"


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The parts a file name was made from.

    For a capped part, ``user_id`` / ``model`` hold only the start the name keeps
    (a UTF-8 character cut in two is dropped) and ``user_id_digest`` /
    ``model_digest`` the 12 hex digits of the whole value's sha256; use
    ``part_digest(value)`` to tell whether a value is the one a name was made from.
    """

    user_id: str | None
    model: str | None
    day: date
    part: int
    user_id_digest: str | None = None
    model_digest: str | None = None


def _decode_part(encoded: str) -> tuple[str, str | None]:
    capped = _CAPPED.match(encoded)
    if capped is None:
        if CAP_MARK in encoded:
            raise ValueError(f"not a log file name part: {encoded!r}")
        return unquote(encoded), None
    return unquote(capped["prefix"], errors="ignore"), capped["digest"]


def parse_file_name(name: str) -> ParsedName:
    """Split a file name back into its parts; raises ``ValueError`` for a foreign name."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not a log file name: {name!r}")
    user, user_digest = (None, None) if match["user"] is None else _decode_part(match["user"])
    model, model_digest = _decode_part(match["model"])
    return ParsedName(
        user_id=user,
        model=None if model == UNKNOWN_MODEL and model_digest is None else model,
        day=datetime.strptime(match["day"], "%Y%m%d").date(),
        part=int(match["part"] or 0),
        user_id_digest=user_digest,
        model_digest=model_digest,
    )
