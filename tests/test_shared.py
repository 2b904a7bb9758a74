"""The record model and file naming that both services rely on."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.ids import new_record_id
from shared.logs import LogEvent, _JsonFormatter, _TextFormatter
from shared.naming import (
    encode_component,
    encode_part,
    file_name,
    file_stem,
    parse_file_name,
    part_digest,
)
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


@pytest.mark.parametrize("source", ["upstream", "injected"])
def test_usage_source_round_trips_and_is_absent_without_usage(source: str) -> None:
    record = make_record(usage_source=source)
    line = record.to_json()
    assert json.loads(line)["usage_source"] == source
    assert Record.from_json(line) == record
    assert "usage_source" not in json.loads(make_record().to_json())


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


def _random_bits(record_id: str) -> int:
    return uuid.UUID(record_id).int & ((1 << 80) - 1)


def test_a_forked_worker_never_shares_the_parents_random_bytes() -> None:
    # Ids come from a pool of random bytes read ahead: a child forked with a full pool
    # would otherwise make the same ids as its parent in the same millisecond.
    new_record_id()  # the pool is full now
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next id, to the parent
        os.write(write, new_record_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    childs = os.read(read, 64).decode()
    os.close(read)
    assert _random_bits(childs) != _random_bits(new_record_id())


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


_DAY = datetime(2024, 2, 29, 12, tzinfo=UTC)
_parts = st.one_of(
    st.text(min_size=1, max_size=400),
    st.text(alphabet=string.ascii_letters + "._-%~/:", min_size=1, max_size=200),
    st.text(alphabet="é€😀ab", min_size=1, max_size=120),
)


def test_a_long_part_is_capped_as_the_contract_says() -> None:
    model = "m" * 300
    digest = hashlib.sha256(model.encode()).hexdigest()[:12]
    assert encode_part(model) == "m" * 80 + "~" + digest
    # Encoded bytes 79..81 are a %XX: the cut keeps 78 bytes rather than split it.
    tricky = "a" * 78 + "/" + "b" * 100
    assert encode_part(tricky) == "a" * 78 + "~" + part_digest(tricky)
    assert encode_part("a" * 77 + "/" + "b" * 100).startswith("a" * 77 + "%2F" + "~")
    assert encode_part("x" * 96) == "x" * 96  # 96 bytes fit as they are
    assert encode_part("~") == "%7E"


@given(user=st.none() | _parts, model=st.none() | _parts, part=st.integers(0, 500))
def test_every_name_fits_and_parses_back(user: str | None, model: str | None, part: int) -> None:
    assume(model != "unknown")  # the contract's name for "no model"
    name = file_name(file_stem(user, model, _DAY), part)
    assert len(name.encode()) <= 255
    # A name may start with a dot (a model called ".0"): it is still one plain file name.
    assert "/" not in name and name.isascii() and name.endswith(".jsonl")
    parsed = parse_file_name(name)
    assert parsed.day == _DAY.date() and parsed.part == part
    for value, got, digest in ((user or None, parsed.user_id, parsed.user_id_digest),
                               (model or None, parsed.model, parsed.model_digest)):
        if value is None:
            continue
        encoded = encode_component(value)
        assert len(encode_part(value)) <= 96
        if len(encoded) <= 96:
            assert (got, digest) == (value, None)
        else:
            assert digest == part_digest(value)
            assert got is not None and value.startswith(got)


@given(left=_parts, right=_parts)
def test_different_parts_never_share_a_name(left: str, right: str) -> None:
    if left != right:
        assert file_stem(left, "m", _DAY) != file_stem(right, "m", _DAY) or (
            part_digest(left) == part_digest(right)  # a 48-bit sha256 collision
        )


def test_a_stray_tilde_is_not_a_log_file_name() -> None:
    with pytest.raises(ValueError):
        parse_file_name("a~b_m_20240101.jsonl")


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_a_text_log_line_starts_with_its_utc_time_to_the_millisecond(created: float) -> None:
    formatter = _TextFormatter()
    record = logging.makeLogRecord({"msg": "event_name", "name": "proxy.x", "levelname": "INFO"})
    record.created, record.msecs = created, int((created - int(created)) * 1000)
    stamp = formatter.format(record).split()[0]
    expected = datetime.fromtimestamp(int(created), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert stamp == f"{expected}.{int(record.msecs):03d}Z"


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
@example(1_765_011_944.0)  # no fraction: no microseconds shown
@example(1_765_011_944.9999996)  # rounds up to the next second
def test_a_json_log_line_has_its_utc_time_to_the_microsecond(created: float) -> None:
    formatter = _JsonFormatter()
    line = formatter.event_line(LogEvent(created, "INFO", "proxy.x", "event_name", {}))
    assert json.loads(line)["ts"] == datetime.fromtimestamp(created, UTC).isoformat()
