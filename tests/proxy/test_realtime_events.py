"""The Realtime session log, in-process: audio summaries, caps, usage over cuts."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from proxy.realtime.events import SessionLog

NOW = datetime.now(UTC)
AUDIO = b"\x01\x02" * 500


def event(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, **fields})


def test_audio_in_items_and_deltas_is_replaced_unless_kept() -> None:
    encoded = base64.b64encode(AUDIO).decode()
    item = {"type": "message", "content": [{"type": "input_audio", "audio": encoded}]}
    summary = {"audio": True, "size": len(AUDIO), "sha256": hashlib.sha256(AUDIO).hexdigest()}

    log = SessionLog(max_events=10, max_bytes=1_000_000, keep_audio=False)
    log.add("client", event("conversation.item.create", item=item), NOW, 1.0)
    log.add("server", event("response.audio.delta", delta=encoded), NOW, 2.0)
    log.add("server", event("response.text.delta", delta="kept"), NOW, 3.0)
    log.add("server", b"\x00\x01", NOW, 4.0)
    events = [entry["event"] for entry in log.events()]
    assert events[0]["item"]["content"][0]["audio"] == summary
    assert events[1]["delta"] == summary
    assert events[2]["delta"] == "kept"
    assert events[3] == {"binary": True, "size": 2, "sha256": hashlib.sha256(b"\0\1").hexdigest()}

    kept = SessionLog(max_events=10, max_bytes=1_000_000, keep_audio=True)
    kept.add("server", event("response.audio.delta", delta=encoded), NOW, 1.0)
    assert kept.events()[0]["event"]["delta"] == encoded


def test_a_long_session_keeps_its_start_and_end_and_counts_the_cut() -> None:
    log = SessionLog(max_events=100, max_bytes=1_000_000, keep_audio=False)
    usage = {"total_tokens": 3, "input_token_details": {"audio_tokens": 2}}
    for number in range(1000):
        log.add("server", event("response.done", n=number, response={"usage": usage}), NOW, 0.0)

    events = log.events()
    numbers = [entry["event"]["n"] for entry in events if "event" in entry]
    assert numbers == [*range(75), *range(975, 1000)]
    marker = events[75]
    assert marker["omitted"] is True and marker["events"] == 900 and marker["size"] > 0
    summary = log.summary()
    assert summary["events_total"] == 1000 and summary["events_omitted"] == 900
    assert summary["usage"] == {"total_tokens": 3000, "input_token_details": {"audio_tokens": 2000}}


def test_the_byte_cap_bounds_the_log_and_a_huge_event_becomes_metadata() -> None:
    log = SessionLog(max_events=10_000, max_bytes=64_000, keep_audio=False)
    huge = event("session.update", session={"instructions": "x" * 100_000})
    log.add("client", huge, NOW, 0.0)
    for _ in range(2000):
        log.add("client", event("input_audio_buffer.commit", pad="y" * 100), NOW, 0.0)

    first = log.events()[0]["event"]
    assert first["type"] == "session.update" and first["truncated"] is True
    assert first["size"] == len(huge)
    assert len(json.dumps(log.events())) < 64_000 * 1.1
    assert log.summary()["events_omitted"] > 0

