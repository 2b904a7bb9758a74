"""The file name as partition key: which files a query needs, from their names alone.

Names follow ``shared.naming`` and are read back with ``parse_file_name``. A name part
longer than the naming limit keeps only a prefix plus a hash of the whole value, so such
a part is matched by that hash; the records' own ``user_id``/``model`` fields remain
authoritative.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from explorer.store import StoredFile
from shared.naming import UNKNOWN_MODEL, ParsedName, parse_file_name, part_digest


@dataclass(frozen=True, slots=True)
class LogFile:
    """A listed file with the parts its name was made from."""

    stored: StoredFile
    name: ParsedName

    @property
    def day(self) -> date:
        return self.name.day


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


def log_files(listed: Iterable[StoredFile]) -> list[LogFile]:
    """The files whose names are log file names; anything else in the store is ignored."""
    files = []
    for stored in listed:
        try:
            files.append(LogFile(stored, parse_file_name(stored.name)))
        except ValueError:
            continue
    return files


def _part_matches(value: str | None, digest: str | None, wanted: str | None) -> bool:
    if digest is not None:
        return wanted is not None and part_digest(wanted) == digest
    return value == wanted


def select(files: Iterable[LogFile], selection: Selection) -> list[LogFile]:
    """The files that can hold records of ``selection``, by name only."""
    # A record without a model and one whose model is literally "unknown" share a file.
    model = selection.model or None
    models = {None, UNKNOWN_MODEL} if model in (None, UNKNOWN_MODEL) else {model}
    return [
        file
        for file in files
        if selection.wants_day(file.day)
        and (
            not selection.user_id
            or _part_matches(file.name.user_id, file.name.user_id_digest, selection.user_id)
        )
        and (
            selection.model is None
            or any(_part_matches(file.name.model, file.name.model_digest, m) for m in models)
        )
    ]
