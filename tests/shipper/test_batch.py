"""From stream entries to per-file chunks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.naming import file_stem
from shared.record import Record
from shipper.batch import (
    FIRST_GUESS_BYTES,
    Entry,
    ReadSize,
    Rejected,
    chunks_by_file,
    parse_entry,
    split_by_bytes,
)
from shipper.source import StreamEntry
from tests.factories import make_record


def _entry(entry_id: str, stem: str, size: int) -> Entry:
    return Entry(entry_id, f"r{entry_id}", stem, b"x" * (size - 1))


def test_one_chunk_per_file_in_stream_order() -> None:
    entries = [_entry(str(i), f"s{i % 2}", 10) for i in range(6)]
    chunks = chunks_by_file(entries, max_append_bytes=1000)
    assert [(c.stem, [e.entry_id for e in c.entries]) for c in chunks] == [
        ("s0", ["0", "2", "4"]), ("s1", ["1", "3", "5"]),
    ]
    assert chunks[0].payload == b"".join(e.line + b"\n" for e in entries[0::2])


def test_a_file_is_split_only_past_the_append_limit_and_on_line_boundaries() -> None:
    entries = [_entry(str(i), "s", 40) for i in range(5)]
    chunks = chunks_by_file(entries, max_append_bytes=100)
    assert [len(c.entries) for c in chunks] == [2, 2, 1]
    assert all(c.size_bytes <= 100 and c.payload.endswith(b"\n") for c in chunks)


def test_parse_renders_the_line_and_the_target_file() -> None:
    record = make_record(user_id="a_b", model="ft:gpt-4o:org::x",
                         timestamp=datetime(2024, 10, 21, 23, 59, 59, tzinfo=UTC))
    parsed = parse_entry(StreamEntry("1-0", {b"record": record.to_json()}), 1 << 20)
    assert isinstance(parsed, Entry)
    assert parsed.line == record.to_json()
    assert parsed.stem == file_stem("a_b", "ft:gpt-4o:org::x", record.timestamp)
    assert parsed.stem == "a%5Fb_ft%3Agpt-4o%3Aorg%3A%3Ax_20241021"


def test_parse_rejects_what_is_not_a_record_with_a_reason() -> None:
    cases = {
        b"{": "invalid record",
        b'{"id": "x"}': "invalid record: timestamp",
        b"[1, 2]": "invalid record",
    }
    for raw, reason in cases.items():
        result = parse_entry(StreamEntry("1-0", {b"record": raw}), 1 << 20)
        assert isinstance(result, Rejected) and reason in result.reason, raw
    missing = parse_entry(StreamEntry("1-0", {b"other": b"{}"}), 1 << 20)
    assert isinstance(missing, Rejected) and "no 'record' field" in missing.reason
    big = parse_entry(StreamEntry("1-0", {b"record": make_record().to_json()}), 100)
    assert isinstance(big, Rejected) and "too large" in big.reason


def test_reads_are_cut_into_batches_by_bytes() -> None:
    entries = [StreamEntry(str(i), {b"record": b"x" * 100}) for i in range(10)]
    batches = split_by_bytes(entries, max_bytes=250)
    assert [len(b) for b in batches] == [2, 2, 2, 2, 2]
    assert split_by_bytes([StreamEntry("1", {b"record": b"x" * 999})], 10) == [
        [StreamEntry("1", {b"record": b"x" * 999})]
    ]


def test_a_record_published_by_the_proxy_is_written_as_its_own_bytes() -> None:
    raw = make_record().to_json()
    parsed = parse_entry(StreamEntry("1-0", {b"record": raw}), 1 << 20)
    assert isinstance(parsed, Entry) and parsed.line == raw


def test_a_record_in_another_form_is_rendered_as_one_canonical_line() -> None:
    record = make_record(timestamp=datetime(2024, 10, 21, 23, 30, tzinfo=UTC))
    data = json.loads(record.to_json())
    variants = {
        "spans lines": json.dumps(data, indent=2).encode(),
        "carriage returns": record.to_json().replace(b",", b",\r"),
        "naive timestamp": record.to_json().replace(b"+00:00", b""),
        "another offset": record.to_json().replace(
            b"2024-10-21T23:30:00+00:00", b"2024-10-22T01:30:00+02:00"
        ),
        "no version": json.dumps({k: v for k, v in data.items() if k != "schema_version"},
                                 separators=(",", ":")).encode(),
    }
    for what, raw in variants.items():
        parsed = parse_entry(StreamEntry("1-0", {b"record": raw}), 1 << 20)
        assert isinstance(parsed, Entry), what
        assert parsed.line == record.to_json(), what
        assert b"\n" not in parsed.line and b"\r" not in parsed.line, what
        assert Record.from_json(parsed.line) == record, what


def test_a_read_asks_for_about_one_batch_of_the_records_last_seen() -> None:
    size = ReadSize(max_records=5000, max_batch_bytes=10 * FIRST_GUESS_BYTES * 100)
    assert size.count() == 900  # 9/10 of the bytes: a margin for records above the mean
    size.observe([StreamEntry(str(i), {b"record": b"x" * 2048}) for i in range(10)])
    assert size.count() == 3600
    size.observe([StreamEntry("1", {b"record": b"x" * 100}), StreamEntry("2", None)])
    assert size.count() == 5000
    size.observe([StreamEntry("3", None)])  # deleted entries tell nothing about sizes
    assert size.count() == 5000
    size.observe([StreamEntry("4", {b"record": b"x" * (1 << 30)})])
    assert size.count() == 1
