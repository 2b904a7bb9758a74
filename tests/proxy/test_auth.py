"""Authentication modes and the static key store, in-process."""

from __future__ import annotations

import pytest

from proxy.auth import Authenticator, StaticKeyStore
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


async def test_none_and_passthrough_accept_anyone_without_a_user() -> None:
    for mode in ("none", "passthrough"):
        caller = await Authenticator(mode, "sk-up", KEYS).authenticate(bearer("anything"))
        assert caller.user_id is None and caller.credential == "anything"


def test_malformed_proxy_api_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="KEY=USER_ID"):
        parse_key_pairs("pk-a")
