"""Secrets in records, in-process: query parameters by name, known values anywhere."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.headers import presented_secrets
from proxy.redaction import MIN_SECRET_CHARS, SecretScrubber, redacted_query
from proxy.targets import UpstreamBase
from shared.record import REDACTED


def test_credential_query_parameters_are_redacted_by_name_and_returned() -> None:
    query = "model=gpt-4o&api-key=abc123SECRET&API_KEY=x2&key=k3&Access_Token=t%2B4&keep=1"

    shown, secrets = redacted_query(query)

    assert shown == (
        f"model=gpt-4o&api-key={REDACTED}&API_KEY={REDACTED}&key={REDACTED}"
        f"&Access_Token={REDACTED}&keep=1"
    )
    assert secrets == ["abc123SECRET", "x2", "k3", "t+4"]
    assert redacted_query("a=1&b") == ("a=1&b", [])


def test_every_credential_header_counts_as_presented() -> None:
    headers = [
        (b"Authorization", b"Bearer sk-aaaa-1111"),
        (b"x-api-key", b"sk-bbbb-2222"),
        (b"openai-api-key", b"sk-cccc-3333"),
        (b"api-key", b"sk-dddd-4444"),
        (b"content-type", b"application/json"),
    ]

    secrets = presented_secrets(headers)

    for key in ("sk-aaaa-1111", "sk-bbbb-2222", "sk-cccc-3333", "sk-dddd-4444"):
        assert key in secrets
    assert "application/json" not in secrets


def test_scrubbing_covers_json_escapes_and_percent_encoding() -> None:
    secret = 'sk-"quoted"/&+=key'
    record = json.dumps({"a": f"x{secret}y", "q": "k=sk-%22quoted%22%2F%26%2B%3Dkey"}).encode()

    scrubbed = SecretScrubber([secret]).scrub(record)

    assert json.loads(scrubbed) == {"a": f"x{REDACTED}y", "q": f"k={REDACTED}"}


def test_the_upstream_base_keeps_its_secrets_out_of_sight() -> None:
    base = UpstreamBase("https://svc:pa%24%24word-1@host.test/v1?api-key=BASE-SECRET-1&v=2")

    assert base.display == "https://host.test/v1"
    assert sorted(base.secrets) == ["BASE-SECRET-1", "pa$$word-1"]


_SECRET = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="["),
    min_size=MIN_SECRET_CHARS,
    max_size=24,
)
_FILLER = st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(_SECRET, min_size=1, max_size=6),
    extra=st.lists(_SECRET, max_size=2),
    pieces=st.lists(st.tuples(_FILLER, st.integers(0, 7)), max_size=8),
)
def test_no_secret_survives_and_the_json_stays_valid(
    secrets: list[str], extra: list[str], pieces: list[tuple[str, int]]
) -> None:
    everyone = secrets + extra
    # Text made of filler with secrets (sometimes cut short) between the pieces.
    text = "".join(filler + everyone[n % len(everyone)][: 8 + n] for filler, n in pieces)
    record = json.dumps({"text": text, "n": [text[:5], 1234567890]}, ensure_ascii=False)

    scrubbed = SecretScrubber(secrets).scrub(record.encode(), extra)

    decoded = json.loads(scrubbed)  # still one valid JSON object
    flat = json.dumps(decoded, ensure_ascii=False)
    for secret in everyone:
        assert secret not in decoded["text"]
        assert json.dumps(secret, ensure_ascii=False)[1:-1] not in flat
    if not any(secret in text for secret in everyone):
        assert scrubbed == record.encode()
