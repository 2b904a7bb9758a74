"""Target file names: ``{user_id}_{model}_{YYYYMMDD}.jsonl`` (DESIGN.md, "File names").

Each of ``user_id`` and ``model`` is one path component: every character outside
``A-Z a-z 0-9 . -`` is percent-encoded as UTF-8, and a part made only of dots is
encoded whole. A name therefore always splits back into its parts on ``_``, and
no name can leave the log folder.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import unquote

SUFFIX = ".jsonl"
UNKNOWN_MODEL = "unknown"

_SAFE = frozenset(string.ascii_letters + string.digits + ".-")
_NAME = re.compile(
    r"^(?:(?P<user>[^_]+)_)?(?P<model>[^_]+)_(?P<day>\d{8})(?:\.(?P<part>[1-9]\d*))?\.jsonl$"
)


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


def encode_component(value: str) -> str:
    """Percent-encode ``value`` so that it is one safe path component."""
    if value.strip(".") == "":
        return "".join(_percent(char) for char in value)
    return "".join(char if char in _SAFE else _percent(char) for char in value)


def file_stem(user_id: str | None, model: str | None, timestamp: datetime) -> str:
    """The name without suffix, from the record's user, model and UTC date."""
    day = timestamp.astimezone(UTC).strftime("%Y%m%d")
    model_part = encode_component(model) if model else UNKNOWN_MODEL
    if user_id:
        return f"{encode_component(user_id)}_{model_part}_{day}"
    return f"{model_part}_{day}"


def file_name(stem: str, part: int = 0) -> str:
    """``stem.jsonl`` for the first file, ``stem.N.jsonl`` after the N-th rollover."""
    if part < 0:
        raise ValueError("part must be >= 0")
    return f"{stem}.{part}{SUFFIX}" if part else f"{stem}{SUFFIX}"


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The parts a file name was made from."""

    user_id: str | None
    model: str | None
    day: date
    part: int


def parse_file_name(name: str) -> ParsedName:
    """Split a file name back into its parts; raises ``ValueError`` for a foreign name."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not a log file name: {name!r}")
    user = match["user"]
    model = unquote(match["model"])
    return ParsedName(
        user_id=unquote(user) if user is not None else None,
        model=None if model == UNKNOWN_MODEL else model,
        day=datetime.strptime(match["day"], "%Y%m%d").date(),
        part=int(match["part"] or 0),
    )
