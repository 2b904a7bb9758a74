"""HTTP semantics and records at the edge, through the real proxy.

Uploads keep their framing, HEAD/204/304 relay intact, the client sees the upstream's own
date and server headers, large forms make bounded records, credentials in the query never
reach a record, and ``ttfb_ms`` is filled in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.proxy.conftest import UPSTREAM_KEY, RunningProxy, StartProxy, read_records, record_for
from tests.support.fake_upstream import SERVER_HEADER, FakeUpstream
from tests.support.raw_http import raw_request

MIB = 1024 * 1024
QUERY_SECRET = "qs-unknown-secret-5e2b91"
HEADER_SECRET = "xk-presented-secret-77c1"


def _form(boundary: str, fields: int, field_bytes: int, file_bytes: int) -> Iterator[bytes]:
    for index in range(fields):
        yield (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{index}\"\r\n\r\n"
        ).encode() + b"v" * field_bytes + b"\r\n"
    yield (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for _ in range(file_bytes // MIB):
        yield b"\x01" * MIB
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.slow
def test_an_upload_with_a_length_goes_upstream_with_that_length(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    proxy = start_proxy(RECORD_MAX_BYTES=str(256 * 1024), RECORD_MAX_BODY_BYTES=str(64 * 1024))
    boundary = "b-edge-1"
    body = b"".join(_form(boundary, fields=300, field_bytes=100 * 1024, file_bytes=10 * MIB))

    response = httpx.post(
        f"{proxy.base_url}/files",
        content=body,  # bytes: sent with a Content-Length
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )

    assert response.status_code == 200, response.text
    [seen] = fake_upstream.requests
    assert not seen.chunked and seen.headers["content-length"] == str(len(body))
    assert hashlib.sha256(seen.body).digest() == hashlib.sha256(body).digest()
    [entry] = read_records(redis_url, 1)
    assert len(entry.raw) <= 256 * 1024  # a 40 MB form, a bounded record
    recorded = entry.record.request.body
    assert recorded["size"] == len(body) and recorded["sha256"] == hashlib.sha256(body).hexdigest()
    first, last = recorded["fields"]["f0"], recorded["fields"]["f99"]
    assert first["truncated"] and first["size"] == 100 * 1024 and len(first["text"]) == 64 * 1024
    assert last["truncated"] and last["text"] == ""  # the form's text budget is spent
    assert recorded["parts_not_listed"] == 300 + 1 - 100


@pytest.mark.slow
def test_head_204_and_304_relay_and_headers_are_the_upstreams(
    proxy: RunningProxy, redis_url: str
) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])

    head = raw_request(port, "HEAD", "/v1/models")
    no_content = raw_request(port, "GET", "/v1/status/204")
    not_modified = raw_request(port, "GET", "/v1/status/304")
    plain = raw_request(port, "GET", "/v1/models")

    assert head.status == 200 and head.body == b""
    assert head.header("content-length") == plain.header("content-length")
    for answer in (no_content, not_modified):
        assert answer.body == b"" and answer.header("transfer-encoding") is None
        assert answer.header("x-proxy-record-id")
    assert (no_content.status, not_modified.status) == (204, 304)
    assert not_modified.header("etag") == '"v1"'
    for answer in (head, no_content, not_modified, plain):
        names = [name for name, _ in answer.headers]
        assert names.count("date") == 1 and names.count("server") == 1, answer.headers
        assert answer.header("server") == SERVER_HEADER
    own = raw_request(port, "GET", "/health")
    assert [name for name, _ in own.headers].count("date") == 1  # the proxy's own answer
    records = read_records(redis_url, 4)
    assert [e.record.response.status_code for e in records if e.record.response] == [
        200, 204, 304, 200
    ]
    assert all(e.record.ttfb_ms is not None for e in records)
    for entry in records:
        assert entry.record.ttfb_ms is not None and entry.record.duration_ms is not None
        assert 0 < entry.record.ttfb_ms <= entry.record.duration_ms


@pytest.mark.slow
def test_credentials_in_query_and_headers_never_reach_the_record(
    proxy: RunningProxy, redis_url: str
) -> None:
    response = httpx.get(
        f"{proxy.base_url}/echo/x?model=m&api-key={QUERY_SECRET}&keep=1",
        headers={"x-api-key": HEADER_SECRET, "openai-api-key": HEADER_SECRET + "2"},
    )

    assert response.status_code == 200
    entry = record_for(redis_url, response.headers["x-proxy-record-id"])
    assert entry.record.request.query == "model=m&api-key=[REDACTED]&keep=1"
    # The echo carries the query and headers back: the response body is scrubbed too.
    for secret in (QUERY_SECRET, HEADER_SECRET, UPSTREAM_KEY):
        assert secret.encode() not in entry.raw


def test_service_info_never_shows_the_base_urls_secrets(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = start_proxy(
        OPENAI_BASE_URL=f"http://svc:pw-SECRET-1@127.0.0.1:{fake_upstream.port}/v1?key=BASE-SECRET-2"
    )

    info = httpx.get(f"{proxy.url}/").json()

    assert info["upstream"] == f"http://127.0.0.1:{fake_upstream.port}/v1"
    assert "SECRET" not in proxy.log()
