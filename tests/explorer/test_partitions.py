"""Which files a query opens, from their names alone (shared/naming's rules)."""

from __future__ import annotations

from datetime import UTC, datetime

from explorer.partitions import Selection, log_files, select
from explorer.store import StoredFile
from shared.naming import file_stem

NOON = datetime(2025, 4, 14, 12, tzinfo=UTC)


def file_name(user_id: str | None, model: str | None, part: int = 0) -> str:
    stem = file_stem(user_id, model, NOON)
    return f"{stem}.{part}.jsonl" if part else f"{stem}.jsonl"


def names(selection: Selection, *stored: str) -> list[str]:
    listing = log_files(StoredFile(name, 1) for name in stored)
    return [file.stored.name for file in select(listing, selection)]


def test_models_with_dots_and_rollover_parts_are_matched_whole() -> None:
    dotted = file_name("alice", "gpt-4.1")
    other = file_name("alice", "gpt-4")
    rolled = file_name("alice", "gpt-4.1", part=2)
    anonymous = file_name(None, "gpt-3.5-turbo")
    listed = (dotted, other, rolled, anonymous, "notes.txt")
    assert names(Selection(model="gpt-4.1"), *listed) == [dotted, rolled]
    assert names(Selection(user_id="alice"), *listed) == [dotted, other, rolled]
    assert names(Selection(model="gpt-3.5-turbo"), *listed) == [anonymous]


def test_capped_parts_are_matched_by_their_hash_not_their_prefix() -> None:
    long_user = "u" * 200
    sibling = "u" * 199 + "v"
    mine, theirs = file_name(long_user, "m"), file_name(sibling, "m")
    assert names(Selection(user_id=long_user), mine, theirs) == [mine]


def test_no_model_and_unknown_share_a_file() -> None:
    unknown = file_name("bob", None)
    assert names(Selection(model=""), unknown) == [unknown]
    assert names(Selection(model="unknown"), unknown) == [unknown]
