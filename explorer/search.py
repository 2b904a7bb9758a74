"""Text search in prompts and answers: the only query that reads bodies in bulk.

The files of the selection are read newest day first; a line is parsed only when its
bytes contain the needle, then the needle must occur in the prompt or the answer as
``explorer.records`` reads them (case-insensitive), not in a model name or a setting.
The search stops after the first day that brings the matches up to what the page needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import groupby
from typing import Any

from explorer.partitions import LogFile, Selection, select
from explorer.records import answer_messages, prompt_messages
from explorer.store import LogStore


def _needle_forms(needle: str) -> list[bytes]:
    # How the needle can appear inside a JSON line: raw UTF-8 or \u-escaped.
    lowered = needle.lower()
    forms = {json.dumps(lowered, ensure_ascii=flag)[1:-1].encode() for flag in (False, True)}
    return sorted(forms)


def record_matches(record: dict[str, Any], needle: str) -> bool:
    """True when ``needle`` occurs in the prompt or the answer (text, tool calls, parts)."""
    lowered = needle.lower()
    for message in (*prompt_messages(record), *answer_messages(record)):
        for text in (message.text, *message.extra):
            if lowered in text.lower():
                return True
    return False


def matching_ids_in(data: bytes, needle: str) -> Iterator[str]:
    """Ids of the records in ``data`` (JSONL bytes) whose bodies contain ``needle``."""
    forms = _needle_forms(needle)
    if not any(form in data.lower() for form in forms):
        return
    for line in data.split(b"\n"):
        lowered = line.lower()
        if not any(form in lowered for form in forms):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if isinstance(record, dict) and record_matches(record, needle):
            yield str(record.get("id"))


def search(
    store: LogStore,
    listing: list[LogFile],
    selection: Selection,
    needle: str,
    enough: Callable[[set[str]], bool],
) -> set[str]:
    """Ids of matching records, newest day first, until ``enough(ids)`` after a whole day."""
    files = sorted(select(listing, selection), key=lambda file: file.day, reverse=True)
    found: set[str] = set()
    for _, day_files in groupby(files, key=lambda file: file.day):
        for file in day_files:
            data = store.read_bytes(file.stored.name, file.stored.size_bytes)
            found.update(matching_ids_in(data, needle))
        if found and enough(found):
            break
    return found
