"""The record model and file naming that both services rely on."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.ids import new_record_id
from shared.naming import encode_component, file_name, file_stem, parse_file_name
from shared.record import SCHEMA_VERSION, Record
from tests.factories import make_record


def test_record_round_trips_through_json() -> None:
    record = make_record(extra_field={"kept": True})
    line = record.to_json()
    assert b"\n" not in line
    again = Record.from_json(line)
    assert again == record
    data = json.loads(line)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["extra_field"] == {"kept": True}
    assert data["timestamp"].endswith("+00:00")


def test_record_timestamps_are_utc() -> None:
    paris = timezone(timedelta(hours=1))
    record = make_record(timestamp=datetime(2024, 1, 1, 0, 30, tzinfo=paris))
    assert record.timestamp == datetime(2023, 12, 31, 23, 30, tzinfo=UTC)
    naive = Record.from_json(make_record().to_json().replace(b"+00:00", b""))
    assert naive.timestamp.tzinfo is UTC


@pytest.mark.parametrize("bad", [b"not json", b"{}", b'{"id": "x"}', b"[1, 2]"])
def test_invalid_records_are_rejected(bad: bytes) -> None:
    with pytest.raises(ValidationError):
        Record.from_json(bad)


def test_record_ids_are_unique_uuid7_in_time_order() -> None:
    ids = [new_record_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    parsed = [uuid.UUID(value) for value in ids]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in parsed)
    stamps = [value.int >> 80 for value in parsed]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("gpt-4o", "gpt-4o"),
        ("a_b", "a%5Fb"),
        ("a/b", "a%2Fb"),
        ("ft:gpt-4o:org::x", "ft%3Agpt-4o%3Aorg%3A%3Ax"),
        ("100%", "100%25"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"),
        ("é", "%C3%A9"),
        ("a b", "a%20b"),
    ],
)
def test_components_are_percent_encoded(raw: str, encoded: str) -> None:
    assert encode_component(raw) == encoded


def test_file_names_follow_the_contract() -> None:
    late = datetime(2024, 10, 21, 23, 59, 59, tzinfo=UTC)
    assert file_name(file_stem("abc-123", "gpt-4", late)) == "abc-123_gpt-4_20241021.jsonl"
    assert file_name(file_stem(None, "gpt-4", late)) == "gpt-4_20241021.jsonl"
    assert file_name(file_stem("u", None, late)) == "u_unknown_20241021.jsonl"
    assert file_name(file_stem("u", "m", late), part=2) == "u_m_20241021.2.jsonl"
    east = timezone(timedelta(hours=5))
    assert file_stem("u", "m", datetime(2024, 10, 22, 3, 0, tzinfo=east)) == "u_m_20241021"


@pytest.mark.parametrize(
    ("user", "model"),
    [("u_1", "ft:gpt-4o:org::x"), (None, "a/b"), ("..", "../../etc/passwd"), ("x", None)],
)
def test_file_names_split_back_into_their_parts(user: str | None, model: str | None) -> None:
    stamp = datetime(2024, 2, 29, 12, tzinfo=UTC)
    for part in (0, 3):
        name = file_name(file_stem(user, model, stamp), part)
        assert "/" not in name and not name.startswith(".")
        parsed = parse_file_name(name)
        assert (parsed.user_id, parsed.model, parsed.day.isoformat(), parsed.part) == (
            user,
            model,
            "2024-02-29",
            part,
        )
