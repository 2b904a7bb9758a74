"""Body capture for the record, in-process: JSON, text, binary, multipart, caps, gzip."""

from __future__ import annotations

import gzip
import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from proxy.capture.bodies import BodyCapture
from proxy.capture.limits import CaptureLimits
from proxy.capture.record_builder import ResponseCapture
from proxy.model_name import model_of
from proxy.redaction import SecretScrubber
from shared.record import REDACTED


def capture(content_type: str | None, body: bytes, max_bytes: int = 1000, step: int = 7) -> object:
    body_capture = BodyCapture(content_type, CaptureLimits(body_bytes=max_bytes))
    for start in range(0, len(body), step):
        body_capture.feed(body[start : start + step])
    return body_capture.result()


def test_json_is_parsed_and_text_stays_text() -> None:
    assert capture("application/json", b'{"model": "m", "n": 1}') == {"model": "m", "n": 1}
    assert capture(None, b'[1, 2]') == [1, 2]
    assert capture("text/plain; charset=utf-8", "héllo".encode()) == "héllo"
    assert capture("application/json", b"not json") == "not json"
    assert capture("application/json", b"") is None


def test_binary_is_metadata_only() -> None:
    body = bytes(range(256)) * 4

    result = capture("audio/mpeg", body)

    assert result == {
        "binary": True,
        "content_type": "audio/mpeg",
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


@given(
    body=st.binary(min_size=1, max_size=300),
    cap=st.integers(min_value=0, max_value=200),
    step=st.integers(min_value=1, max_value=64),
    content_type=st.sampled_from(["application/octet-stream", "text/plain"]),
)
def test_the_size_and_sha256_are_of_the_whole_body_whatever_the_cap_and_chunks(
    body: bytes, cap: int, step: int, content_type: str
) -> None:
    result = capture(content_type, body, max_bytes=cap, step=step)
    if isinstance(result, dict):  # metadata: binary, or text over the cap
        assert result["size"] == len(body)
        assert result["sha256"] == hashlib.sha256(body).hexdigest()
    else:  # text within the cap, or text whose bytes are not UTF-8 (then binary)
        assert len(body) <= cap and result == body.decode()


def test_text_over_the_cap_is_truncated_and_marked() -> None:
    body = json.dumps({"text": "é" * 100}).encode()

    result = capture("application/json", body, max_bytes=20)

    assert isinstance(result, dict)
    assert result["truncated"] is True and result["size"] == len(body)
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    # The cap falls inside a two-byte character: it is dropped, not mangled.
    assert body.decode().startswith(result["text"]) and len(result["text"].encode()) <= 20


def test_multipart_keeps_fields_and_file_metadata_not_bytes() -> None:
    audio = b"\x00\x01" * 5000
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
        b"Content-Type: audio/mpeg\r\n\r\n" + audio + b"\r\n--XyZ--\r\n"
    )

    result = capture("multipart/form-data; boundary=XyZ", body, max_bytes=100, step=333)

    assert isinstance(result, dict)
    assert result["multipart"] is True and result["size"] == len(body)
    assert result["fields"] == {"model": "whisper-1"}
    assert result["files"] == [
        {
            "field": "file",
            "filename": "a.mp3",
            "content_type": "audio/mpeg",
            "size": len(audio),
            "sha256": hashlib.sha256(audio).hexdigest(),
        }
    ]
    assert model_of("/v1/audio/transcriptions", "", result) == "whisper-1"


def test_gzip_response_is_decoded_for_the_record() -> None:
    payload = {"object": "list", "data": ["x" * 50] * 20}
    raw = gzip.compress(json.dumps(payload).encode())
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]

    response = ResponseCapture("/v1/models", headers, CaptureLimits(body_bytes=100_000))
    for start in range(0, len(raw), 10):
        response.feed(raw[start : start + 10])
    response.finish()

    assert response.result() == payload


def test_the_model_comes_from_body_query_or_path() -> None:
    assert model_of("/v1/chat/completions", "", {"model": "gpt-4o"}) == "gpt-4o"
    assert model_of("/v1/models/ft:gpt-4o:org::1", "", None) == "ft:gpt-4o:org::1"
    assert model_of("/v1/realtime", "model=gpt-4o-realtime", None) == "gpt-4o-realtime"
    assert model_of("/v1/models", "", None) is None
    truncated = {"truncated": True, "text": "..."}
    tail = b'..."}], "model": "gpt-4.1", "stream": true}'
    assert model_of("/v1/chat/completions", "", truncated, b'{"messages": [', tail) == "gpt-4.1"


def test_the_scrubber_removes_secrets_anywhere() -> None:
    scrubber = SecretScrubber(["sk-upstream-123456", "short"])
    record = json.dumps({"q": "key=sk-upstream-123456", "short": "short", "c": "sk-client-999"})

    scrubbed = scrubber.scrub(record.encode(), ["sk-client-999"]).decode()

    assert "sk-upstream-123456" not in scrubbed and "sk-client-999" not in scrubbed
    assert json.loads(scrubbed) == {"q": f"key={REDACTED}", "short": "short", "c": REDACTED}
