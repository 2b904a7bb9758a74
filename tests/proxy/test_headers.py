"""Header rules, in-process: what goes upstream, what comes back, what the record shows."""

from __future__ import annotations

from proxy.headers import client_response_headers, recorded_headers, upstream_request_headers
from shared.record import REDACTED


def raw(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in pairs]


CLIENT = raw(
    ("Host", "proxy:8000"),
    ("Content-Length", "12"),
    ("Connection", "keep-alive, X-Custom-Hop"),
    ("X-Custom-Hop", "1"),
    ("Keep-Alive", "timeout=5"),
    ("Proxy-Authorization", "Basic abc"),
    ("TE", "trailers"),
    ("Transfer-Encoding", "chunked"),
    ("Upgrade", "h2c"),
    ("Authorization", "Bearer client-key"),
    ("api-key", "client-key"),
    ("OpenAI-Organization", "org-1"),
    ("OpenAI-Project", "proj-1"),
    ("OpenAI-Beta", "assistants=v2"),
    ("Idempotency-Key", "k-1"),
    ("User-Agent", "OpenAI/Python 1.0"),
    ("Accept-Encoding", "gzip"),
    ("Expect", "100-continue"),
)


def test_upstream_gets_the_end_to_end_headers_and_the_upstream_key() -> None:
    sent = dict(upstream_request_headers(CLIENT, passthrough=False, authorization="Bearer up"))

    assert sent == {
        "authorization": "Bearer up",
        "openai-organization": "org-1",
        "openai-project": "proj-1",
        "openai-beta": "assistants=v2",
        "idempotency-key": "k-1",
        "user-agent": "OpenAI/Python 1.0",
        "accept-encoding": "gzip",
    }


def test_passthrough_keeps_the_clients_credentials() -> None:
    sent = dict(upstream_request_headers(CLIENT, passthrough=True, authorization="Bearer up"))

    assert sent["authorization"] == "Bearer client-key"
    assert sent["api-key"] == "client-key"
    assert "proxy-authorization" not in sent


def test_the_client_gets_the_upstreams_headers_without_hop_by_hop_plus_the_record_id() -> None:
    upstream = raw(
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "42"),
        ("Connection", "close"),
        ("Transfer-Encoding", "chunked"),
        ("x-request-id", "req_1"),
        ("openai-processing-ms", "12"),
        ("set-cookie", "a=b"),
        ("x-proxy-record-id", "spoofed"),
    )

    relayed = client_response_headers(upstream, "rec-1")

    assert relayed == raw(
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
        ("content-length", "42"),
        ("x-request-id", "req_1"),
        ("openai-processing-ms", "12"),
        ("set-cookie", "a=b"),
        ("x-proxy-record-id", "rec-1"),
    )


def test_the_record_shows_headers_with_secrets_redacted() -> None:
    recorded = recorded_headers(
        raw(
            ("Authorization", "Bearer k"),
            ("Cookie", "s=1"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("X-Api-Key", "k"),
            ("OpenAI-Api-Key", "k"),
            ("Accept", "a"),
            ("Accept", "b"),
        )
    )

    assert recorded == {
        "authorization": REDACTED,
        "cookie": REDACTED,
        "set-cookie": f"{REDACTED}, {REDACTED}",
        "x-api-key": REDACTED,
        "openai-api-key": REDACTED,
        "accept": "a, b",
    }
