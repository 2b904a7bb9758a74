"""Who is calling: the three ``AUTH_MODE``s and the proxy keys of ``AUTH_MODE=keys``.

Keys live in memory only as sha256 digests and are compared in constant time. Where a
key is looked up is behind ``KeyStore``: today the static ``PROXY_API_KEYS``; keys
stored in Redis plug in beside it later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from proxy.errors import Unauthorized
from proxy.headers import RawHeaders, header_value
from proxy.settings import AuthMode


def key_digest(key: str) -> bytes:
    """The sha256 of a key: the only form in which the proxy keeps one."""
    return hashlib.sha256(key.encode()).digest()


class KeyStore(Protocol):
    """Looks up the user a proxy key belongs to."""

    async def user_for(self, digest: bytes) -> str | None:
        """The user id of the key with this sha256 ``digest``, or ``None`` if unknown."""
        ...


class StaticKeyStore:
    """The keys of ``PROXY_API_KEYS`` (comma-separated ``KEY=USER_ID`` pairs)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._users = [(key_digest(key), user) for key, user in pairs]

    async def user_for(self, digest: bytes) -> str | None:
        found: str | None = None
        # Every stored digest is compared, so timing does not depend on which one matched.
        for stored, user in self._users:
            if hmac.compare_digest(stored, digest):
                found = user
        return found


@dataclass(frozen=True, slots=True)
class Caller:
    """The outcome of authentication for one request."""

    user_id: str | None
    credential: str | None
    """The secret the client presented (scrubbed from the record wherever it appears)."""


def presented_credential(headers: RawHeaders) -> str | None:
    """The key in ``Authorization: Bearer <key>`` or in ``api-key``, if any."""
    authorization = header_value(headers, "authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = header_value(headers, "api-key")
    return api_key.strip() if api_key and api_key.strip() else None


class Authenticator:
    """Decides who the caller is and which credentials go upstream."""

    def __init__(self, mode: AuthMode, upstream_key: str | None, key_store: KeyStore) -> None:
        self.mode = mode
        self._key_store = key_store
        self.upstream_authorization = f"Bearer {upstream_key}" if upstream_key else None

    @property
    def passthrough(self) -> bool:
        return self.mode == "passthrough"

    async def authenticate(self, headers: RawHeaders) -> Caller:
        """The caller; raises ``Unauthorized`` when ``AUTH_MODE=keys`` and the key is not known."""
        credential = presented_credential(headers)
        if self.mode != "keys":
            return Caller(user_id=None, credential=credential)
        if credential is None:
            raise Unauthorized(
                "Missing proxy API key: send it as 'Authorization: Bearer <key>'."
            )
        user_id = await self._key_store.user_for(key_digest(credential))
        if user_id is None:
            raise Unauthorized("Incorrect proxy API key provided.")
        return Caller(user_id=user_id, credential=credential)
