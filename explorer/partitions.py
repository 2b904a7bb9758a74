"""The file name as partition key: which files a query needs, from their names alone.

Names follow ``shared.naming``. A name part longer than the naming limit is cut and ends
in ``~`` plus a hash; such a part is matched by its uncut prefix, a superset that the
record's own ``user_id``/``model`` fields then narrow (they are authoritative).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from explorer.store import StoredFile
from shared.naming import UNKNOWN_MODEL, encode_component, parse_file_name

CUT_MARK = "~"


@dataclass(frozen=True, slots=True)
class LogFile:
    """A listed file with the parts its name encodes (still encoded, as in the name)."""

    stored: StoredFile
    user_part: str | None
    model_part: str
    day: date


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records a query is about; ``None`` means any."""

    day_from: date | None = None
    day_to: date | None = None
    user_id: str | None = None
    model: str | None = None

    def wants_day(self, day: date) -> bool:
        return (self.day_from is None or day >= self.day_from) and (
            self.day_to is None or day <= self.day_to
        )


def _name_parts(name: str) -> tuple[str | None, str]:
    stem = name.split(".", 1)[0]
    pieces = stem.split("_")
    return (pieces[0], pieces[1]) if len(pieces) == 3 else (None, pieces[0])


def log_files(listed: Iterable[StoredFile]) -> list[LogFile]:
    """The files whose names are log file names; anything else in the store is ignored."""
    files = []
    for stored in listed:
        try:
            parsed = parse_file_name(stored.name)
        except ValueError:
            continue
        user_part, model_part = _name_parts(stored.name)
        files.append(LogFile(stored, user_part, model_part, parsed.day))
    return files


def _part_matches(part: str | None, wanted: str) -> bool:
    if part is None:
        return False
    if part == wanted:
        return True
    prefix, cut, _ = part.partition(CUT_MARK)
    return bool(cut) and wanted.startswith(prefix)


def select(files: Iterable[LogFile], selection: Selection) -> list[LogFile]:
    """The files that can hold records of ``selection``, by name only."""
    user = encode_component(selection.user_id) if selection.user_id else None
    model = None
    if selection.model is not None:
        model = encode_component(selection.model) if selection.model else UNKNOWN_MODEL
    return [
        file
        for file in files
        if selection.wants_day(file.day)
        and (user is None or _part_matches(file.user_part, user))
        and (model is None or _part_matches(file.model_part, model))
    ]
