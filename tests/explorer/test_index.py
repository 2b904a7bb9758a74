"""Per-file summaries: scanned once, keyed by name and size, never writing the log store."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from explorer.cache import SummaryCache
from explorer.index import Index
from explorer.partitions import Selection
from explorer.report import report
from explorer.store import LocalStore
from tests.explorer.conftest import at, chat
from tests.factories import append_records, log_file_name


def _index(logs: Path, cache_dir: Path) -> Index:
    store = LocalStore(logs)
    return Index(store, SummaryCache(cache_dir, store.location))


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_closed_files_are_scanned_once_and_grown_files_again(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _fingerprint(logs)
    day = Selection(date(2024, 10, 22), date(2024, 10, 22))
    first = _index(logs, tmp_path / "cache").sync(day)
    assert first.files_scanned == first.files_needed > 0

    # A new process (a new Index) finds every summary in the cache.
    again = _index(logs, tmp_path / "cache")
    stats = again.sync(day)
    assert (stats.files_scanned, stats.files_from_cache) == (0, first.files_needed)
    assert again.sync(day).files_needed == 0  # already loaded: nothing to do

    # Only the files of the selected day were opened.
    other_day = again.sync(Selection(date(2024, 10, 21), date(2024, 10, 21)))
    assert other_day.files_scanned == 1

    # The shipper appends to one file: only that file is scanned again, the old entry goes.
    append_records(logs, [chat("bob", "gpt-4o", at("2024-10-22T20:00:00+00:00"))])
    grown = again.sync(day)
    assert grown.files_scanned == 1
    name = log_file_name("bob", "gpt-4o", at("2024-10-22T20:00:00+00:00"))
    assert again.cache.entries()[name].size_bytes == (logs / name).stat().st_size
    rows = report(again, day, ("user", "model"))
    assert next(r for r in rows if (r.user_id, r.model) == ("bob", "gpt-4o")).calls == 2

    # A file removed from the store disappears from the answers.
    (logs / name).unlink()
    rows = report(again, day, ("user", "model"))
    assert ("bob", "gpt-4o") not in {(r.user_id, r.model) for r in rows}

    # Segments whose every entry is outdated are deleted; the others stay.
    monkeypatch.setattr("explorer.cache.PRUNE_GRACE_S", 0.0)
    listed = {f.name: f.size_bytes for f in again.store.list_files()}
    segments = len(list(again.cache.folder.glob("seg-*.parquet")))
    assert again.cache.prune(listed) == 1  # the grown file's segment: the file is gone
    assert len(list(again.cache.folder.glob("seg-*.parquet"))) == segments - 1
    assert _index(logs, tmp_path / "cache").sync(Selection()).files_scanned == 0

    before.pop(name)
    after = _fingerprint(logs)
    assert {key: after[key] for key in before} == before  # the store was only read


def test_a_torn_last_line_is_not_a_record_until_completed(logs: Path, tmp_path: Path) -> None:
    index = _index(logs, tmp_path / "cache")
    torn_day = Selection(date(2024, 10, 21), date(2024, 10, 21))
    assert sum(r.calls for r in report(index, torn_day, ())) == 2
    name = log_file_name("alice", "gpt-4o-mini", at("2024-10-21T12:00:00+00:00"))
    with open(logs / name, "ab") as file:
        file.write(b'00:00+00:00", "user_id": "alice", "model": "gpt-4o-mini", '
                   b'"request": {"method": "POST", "path": "/v1/chat/completions"}, '
                   b'"response": {"status_code": 200}}\n')
    assert sum(r.calls for r in report(index, torn_day, ())) == 3
