"""HTTP through the real proxy: methods, query strings, headers, gzip, uploads and limits."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest

from proxy.auth import passthrough_user_id
from tests.proxy.conftest import (
    CLIENT_KEY,
    UPSTREAM_KEY,
    RunningProxy,
    StartProxy,
    read_records,
    record_for,
)
from tests.support.fake_upstream import ALL_METHODS, FakeUpstream

MIB = 1024 * 1024


@pytest.mark.slow
def test_every_method_and_the_query_string_are_forwarded(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    query = "a=1&b=two%20words&a=3&empty=&slash=%2F"

    responses = {
        method: httpx.request(method, f"{proxy.base_url}/echo/some/path?{query}")
        for method in ALL_METHODS
    }

    for method, response in responses.items():
        assert response.status_code == 200, method
        assert response.headers["x-proxy-record-id"]
        if method != "HEAD":
            assert response.json()["query"] == query
    seen = [(r.method, r.path, r.query) for r in fake_upstream.requests]
    assert seen == [(method, "/v1/echo/some/path", query) for method in ALL_METHODS]
    records = read_records(redis_url, len(ALL_METHODS))
    assert [(e.record.request.method, e.record.request.query) for e in records] == [
        (method, query) for method in ALL_METHODS
    ]


@pytest.mark.slow
def test_headers_follow_the_rules_both_ways(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    response = httpx.post(
        f"{proxy.base_url}/echo/headers",
        content=b"{}",
        headers={
            "authorization": f"Bearer {CLIENT_KEY}",
            "api-key": CLIENT_KEY,
            "openai-organization": "org-123",
            "openai-project": "proj-456",
            "openai-beta": "assistants=v2",
            "idempotency-key": "idem-789",
            "user-agent": "my-app/1.0",
            "connection": "keep-alive, x-hop",
            "x-hop": "dropped",
            "keep-alive": "timeout=5",
            "te": "trailers",
            "content-type": "application/json",
        },
    )

    [seen] = fake_upstream.requests
    sent = seen.headers
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "api-key" not in sent
    assert (sent["openai-organization"], sent["openai-project"]) == ("org-123", "proj-456")
    assert (sent["openai-beta"], sent["idempotency-key"]) == ("assistants=v2", "idem-789")
    assert sent["user-agent"] == "my-app/1.0"
    for hop in ("x-hop", "keep-alive", "te"):
        assert hop not in sent
    assert sent["host"] == f"127.0.0.1:{fake_upstream.port}"
    # Upstream response headers reach the client (x-request-id), hop-by-hop ones do not.
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["x-proxy-record-id"]
    entry = record_for(redis_url, response.headers["x-proxy-record-id"])
    recorded = entry.record.request.headers
    assert recorded["authorization"] == "[REDACTED]" and recorded["api-key"] == "[REDACTED]"
    assert recorded["openai-organization"] == "org-123"
    assert UPSTREAM_KEY.encode() not in entry.raw and CLIENT_KEY.encode() not in entry.raw


@pytest.mark.slow
def test_passthrough_forwards_the_clients_own_key(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    proxy = start_proxy(AUTH_MODE="passthrough")

    httpx.get(f"{proxy.base_url}/echo/x", headers={"authorization": f"Bearer {CLIENT_KEY}"})

    [seen] = fake_upstream.requests
    assert seen.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    [entry] = read_records(redis_url, 1)
    assert entry.record.user_id == passthrough_user_id(CLIENT_KEY)
    assert CLIENT_KEY.encode() not in entry.raw


@pytest.mark.slow
def test_gzip_reaches_the_client_intact_and_the_record_decoded(
    proxy: RunningProxy, redis_url: str
) -> None:
    with httpx.Client() as client:
        request = client.build_request(
            "GET", f"{proxy.base_url}/models", headers={"accept-encoding": "gzip"}
        )
        response = client.send(request, stream=True)
        raw = b"".join(response.iter_raw())
        response.close()

    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(raw)
    models = json.loads(gzip.decompress(raw))
    assert models["object"] == "list"
    [entry] = read_records(redis_url, 1)
    assert entry.record.response is not None
    assert entry.record.response.body == models


@pytest.mark.slow
def test_without_accept_encoding_the_response_is_plain(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    response = httpx.get(f"{proxy.base_url}/models", headers={"accept-encoding": "identity"})

    assert "content-encoding" not in response.headers
    assert response.json()["object"] == "list"
    assert fake_upstream.requests[0].headers["accept-encoding"] == "identity"


def _chunks(total_bytes: int, chunk_bytes: int = MIB) -> Iterator[bytes]:
    sent = 0
    while sent < total_bytes:
        size = min(chunk_bytes, total_bytes - sent)
        yield bytes([sent // chunk_bytes % 251]) * size
        sent += size


def _multipart(boundary: str, payload_bytes: int) -> Iterator[bytes]:
    yield (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from _chunks(payload_bytes)
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.slow
def test_a_large_upload_streams_upstream_and_the_record_keeps_metadata(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    boundary = "test-boundary-1234"
    payload_bytes = 20 * MIB
    body = b"".join(_multipart(boundary, payload_bytes))

    response = httpx.post(
        f"{proxy.base_url}/files",
        content=_multipart(boundary, payload_bytes),  # a generator: sent chunked
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )

    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == payload_bytes
    [seen] = fake_upstream.requests
    assert seen.chunked  # streamed on, not buffered and re-sent with a length
    assert hashlib.sha256(seen.body).digest() == hashlib.sha256(body).digest()
    [entry] = read_records(redis_url, 1)
    recorded = entry.record.request.body
    assert recorded["multipart"] is True
    assert recorded["size"] == len(body)
    assert recorded["sha256"] == hashlib.sha256(body).hexdigest()
    assert recorded["fields"] == {"purpose": "batch"}
    [file] = recorded["files"]
    assert file["filename"] == "big.jsonl" and file["size"] == payload_bytes
    assert len(entry.raw) < 10_000  # metadata, not the bytes


@pytest.mark.slow
def test_a_declared_length_over_the_limit_is_413_at_once(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    proxy = start_proxy(MAX_REQUEST_BYTES="1000")

    response = httpx.post(f"{proxy.base_url}/embeddings", content=b"x" * 5000)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert fake_upstream.requests == []
    entry = record_for(redis_url, response.headers["x-proxy-record-id"])
    assert entry.record.error is not None and entry.record.error.type == "request_too_large"


@pytest.mark.slow
def test_a_chunked_body_over_the_limit_is_413(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    proxy = start_proxy(MAX_REQUEST_BYTES=str(MIB))

    response = httpx.post(
        f"{proxy.base_url}/files", content=_chunks(3 * MIB, 256 * 1024), timeout=30
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert fake_upstream.requests == []  # the upstream never got a complete request
