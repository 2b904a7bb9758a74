"""Cut a top-level ``"key":null`` member out of a JSON object's text, leaving every other byte.

The proxy removes the ``"usage":null`` that the upstream adds to stream chunks once it is
asked for usage; re-serialising the chunk would change its bytes (spacing, escapes,
number forms), so the member is cut from the text instead, together with the comma that
separates it from its neighbour.

The text must be valid JSON (the caller has parsed it). Then a match of
``"key"\\s*:\\s*null`` whose opening quote follows ``{`` or ``,`` is a member (inside a
string that quote would end the string, and ``key`` after a closing quote is not JSON),
and it is a top-level member when the brackets after it close exactly one level, at the
last byte. Only the text after the match is scanned, and the upstream puts ``usage`` at
the end of its chunks, so the cost does not grow with the chunk.
"""

from __future__ import annotations

import re
from functools import lru_cache

# A string (its escapes skipped) or a bracket: what the depth of a position depends on.
_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}]', re.DOTALL)
# Members whose values hold no bracket outside a string (strings, numbers, literals), then
# the closing brace and nothing else.
_FLAT_TAIL = re.compile(
    rb'(?:[ \t\r\n]*,[ \t\r\n]*"[^"\\]*(?:\\.[^"\\]*)*"[ \t\r\n]*:[ \t\r\n]*'
    rb'(?:"[^"\\]*(?:\\.[^"\\]*)*"|[-+.\w]+))*[ \t\r\n]*\}[ \t\r\n]*'
)
_WHITESPACE = b" \t\r\n"
_OPENING = frozenset(b"{[")


@lru_cache(maxsize=16)
def _null_member(key: bytes) -> re.Pattern[bytes]:
    return re.compile(rb'"%s"[ \t\r\n]*:[ \t\r\n]*null' % re.escape(key))


def cut_null_member(text: bytes, key: bytes) -> bytes | None:
    """``text`` without its top-level ``"key":null`` member and one separating comma.

    ``None`` when the object has no such member at its top level, has it more than once,
    or the text is not an object: then nothing can be cut exactly.
    """
    found: tuple[int, int] | None = None
    for match in _null_member(key).finditer(text):
        before = _previous_byte(text, match.start())
        if before is None or text[before] not in b",{" or not _closes_at_end(text, match.end()):
            continue
        if found is not None:
            return None  # a duplicate key: which one the reader keeps is not ours to decide
        found = (before, match.end())
    if found is None:
        return None
    before, end = found
    if text[before] == ord(","):
        return text[:before] + text[end:]
    after = _next_byte(text, end)  # the member is the first: the comma after it goes
    assert after is not None  # the object closes after it
    if text[after] == ord(","):
        rest = _next_byte(text, after + 1)
        return text[: before + 1] + text[rest if rest is not None else after + 1 :]
    return text[: before + 1] + text[after:]


def _previous_byte(text: bytes, position: int) -> int | None:
    if position and text[position - 1] not in _WHITESPACE:
        return position - 1  # compact JSON: no copy needed
    index = len(text[:position].rstrip(_WHITESPACE)) - 1
    return index if index >= 0 else None


def _next_byte(text: bytes, position: int) -> int | None:
    index = len(text) - len(text[position:].lstrip(_WHITESPACE))
    return index if index < len(text) else None


def _closes_at_end(text: bytes, position: int) -> bool:
    """Whether the brackets after ``position`` close one level, with the text's last byte."""
    if _FLAT_TAIL.fullmatch(text, position):
        return True  # the usual case: a few members of strings and scalars, then the end
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text, position):
        first = token.group()[0]
        if first == ord('"'):
            continue
        if first in _OPENING:
            depth += 1
            continue
        depth -= 1
        if depth < 0:
            return first == ord("}") and not text[token.end() :].strip(_WHITESPACE)
    return False
