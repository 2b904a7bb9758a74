"""Request targets: only ever ``{OPENAI_BASE_URL}/{path}``, whatever the client sends.

Raw sockets send each target exactly as written (no client-side normalisation) to a real
proxy; a canary server on another port must never be contacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

import httpx
import pytest
import yarl
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import BadTarget, NotFound
from proxy.targets import UpstreamBase
from tests.proxy.conftest import StartProxy, read_records
from tests.support.canary import Canary
from tests.support.fake_upstream import FakeUpstream
from tests.support.raw_http import RawResponse, raw_request


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary() as server:
        yield server


def _refused(response: RawResponse, status: int) -> None:
    assert response.status == status, response
    assert response.header("x-proxy-record-id")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}


def _port(url: str) -> int:
    return int(url.split(":")[-1].split("/")[0])


def test_targets_that_could_leave_the_upstream_are_refused_and_recorded(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, canary: Canary, redis_url: str
) -> None:
    # A base without a path: the case where "/v1%2F@host" used to reach another host.
    proxy = start_proxy(OPENAI_BASE_URL=f"http://127.0.0.1:{fake_upstream.port}")
    port, evil = _port(proxy.url), f"127.0.0.1:{canary.port}"
    refused = [
        "/v1/../../admin/secrets",
        "/v1/%2e%2e/%2E%2E/admin",
        "/v1/.%2e/admin",
        "/v1/./models",
        f"/v1%2F@{evil}/steal",
        f"/v1/%2F%2F{evil}/x",
        f"/v1/models%2F..%2F..%2F{evil}",
        "/v1/a%5Cb",
        "/v1/a%00b",
        "/v1/a%0D%0AHost:%20evil",
        "/v1//models",
    ]

    answers = [raw_request(port, "GET", target) for target in refused]
    not_found = [raw_request(port, "GET", target) for target in ("/v1", "/v1/", "/nope")]
    not_allowed = raw_request(port, "TRACE", "/v1/models")
    allowed = raw_request(port, "GET", "/v%31/models")
    # An absolute-form target names another host: it still goes to the upstream only.
    absolute = raw_request(port, "GET", f"http://{evil}/v1/models")

    for target, answer in zip(refused, answers, strict=True):
        assert answer.status == 400, target
        _refused(answer, 400)
        assert answer.json()["error"]["code"] == "invalid_path"
    for answer in not_found:
        _refused(answer, 404)
    _refused(not_allowed, 405)
    assert "GET" in (not_allowed.header("allow") or "")
    assert allowed.status == absolute.status == 404  # the upstream's: it serves /v1/... only
    # Only the allowed requests reached the upstream, at the decoded path; nothing else.
    assert [(r.method, r.path) for r in fake_upstream.requests] == [("GET", "/models")] * 2
    assert canary.contacts == 0
    total = len(refused) + len(not_found) + 3
    records = read_records(redis_url, total)
    statuses = sorted(e.record.response.status_code for e in records if e.record.response)
    assert statuses == sorted([400] * len(refused) + [404] * 5 + [405])
    by_id = {e.record.id: e.record for e in records}
    first = by_id[answers[0].header("x-proxy-record-id") or ""]
    assert first.error is not None and first.error.type == "invalid_path"


_BASES = [
    "http://127.0.0.1:9/v1",
    "http://127.0.0.1:9",
    "https://api.example.test/openai/v1/",
    "http://user:pw@10.0.0.1:8080/deployments/x?api-version=1",
]
_PIECES = st.sampled_from(
    [".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "/", "\\", "@", ":", "?", "#", "%", "%25",
     "%00", "%0a", "a", "v1", "models", "%40", "//", "%252e", "evil.test", "%C3%A9", " "]
)


@settings(max_examples=400, deadline=None)
@given(base=st.sampled_from(_BASES), pieces=st.lists(_PIECES, max_size=12))
def test_no_generated_path_leaves_the_base(base: str, pieces: list[str]) -> None:
    upstream = UpstreamBase(base)
    raw_path = ("/v1/" + "".join(pieces)).encode()
    try:
        url = upstream.url_for(raw_path, b"q=1")
    except (BadTarget, NotFound):
        return
    reparsed = httpx.URL(str(url))
    assert (reparsed.scheme, reparsed.host, reparsed.port) == (
        upstream.url.scheme, upstream.url.host, upstream.url.port
    )
    assert str(reparsed.copy_with(userinfo=b"")).startswith(upstream.display + "/")
    # As the upstream will decode it: no segment may climb out of the base.
    segments = reparsed.raw_path.split(b"?")[0].split(b"/")
    assert all(unquote_to_bytes(s) not in (b".", b"..") for s in segments)
    assert all(b"/" not in unquote_to_bytes(s) for s in segments)


def test_the_final_check_refuses_a_url_outside_the_base() -> None:
    upstream = UpstreamBase("http://127.0.0.1:9/v1")

    for outside in ("http://127.0.0.1:10/v1/x", "https://127.0.0.1:9/v1/x",
                    "http://127.0.0.1:9/v2/x", "http://127.0.0.1:9/v1x", "http://evil:9/v1/x"):
        with pytest.raises(BadTarget):
            upstream.check(yarl.URL(outside, encoded=True))
    upstream.check(yarl.URL("http://127.0.0.1:9/v1/models", encoded=True))


def test_segments_still_encoded_after_one_decoding_are_refused(
    start_proxy: StartProxy, fake_upstream: FakeUpstream
) -> None:
    # An upstream or gateway that decodes twice would read these as "..", "/" or "\".
    proxy = start_proxy()
    port = _port(proxy.url)
    refused = ["/v1/%252e%252e/x", "/v1/%252E./admin", "/v1/models%252Fx", "/v1/a%255cb"]

    answers = [raw_request(port, "GET", target) for target in refused]
    allowed = raw_request(port, "GET", "/v1/models/ft%25model")  # a '%' alone is data

    for target, answer in zip(refused, answers, strict=True):
        assert answer.status == 400, target
        _refused(answer, 400)
        assert answer.json()["error"]["code"] == "invalid_path"
    assert allowed.status == 200
    assert [r.path for r in fake_upstream.requests] == ["/v1/models/ft%model"]
