"""Authentication modes and the static key store, in-process."""

from __future__ import annotations

import pytest

from proxy.auth import Authenticator, StaticKeyStore, passthrough_user_id
from proxy.errors import Unauthorized
from proxy.settings import parse_key_pairs

KEYS = StaticKeyStore(parse_key_pairs(" pk-a=alice , pk-b=bob ,"))


def bearer(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]


async def test_keys_mode_maps_a_key_to_its_user() -> None:
    auth = Authenticator("keys", "sk-up", KEYS)

    assert (await auth.authenticate(bearer("pk-b"))).user_id == "bob"
    assert (await auth.authenticate([(b"api-key", b"pk-a")])).user_id == "alice"
    assert auth.upstream_authorization == "Bearer sk-up"


@pytest.mark.parametrize("headers", [[], bearer("pk-c"), [(b"authorization", b"Basic pk-a")]])
async def test_keys_mode_refuses_missing_or_unknown_keys(
    headers: list[tuple[bytes, bytes]],
) -> None:
    with pytest.raises(Unauthorized):
        await Authenticator("keys", "sk-up", KEYS).authenticate(headers)


async def test_none_accepts_anyone_without_a_user() -> None:
    caller = await Authenticator("none", "sk-up", KEYS).authenticate(bearer("anything"))
    assert caller.user_id is None and caller.credential == "anything"


async def test_passthrough_names_the_user_after_the_key_and_needs_no_key() -> None:
    auth = Authenticator("passthrough", None, KEYS)
    caller = await auth.authenticate(bearer("sk-anything-1234"))
    assert caller.user_id == passthrough_user_id("sk-anything-1234")
    assert caller.credential == "sk-anything-1234"
    assert (await auth.authenticate([])).user_id is None


def test_malformed_proxy_api_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="KEY=USER_ID"):
        parse_key_pairs("pk-a")
