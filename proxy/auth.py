"""Who is calling: the three ``AUTH_MODE``s, proxy keys, and passthrough identities.

Proxy keys live in memory only as sha256 digests. Where a key is looked up is behind
``KeyStore``: the static ``PROXY_API_KEYS`` (``StaticKeyStore``) and the keys managed in
Redis (``proxy.keys.cache.KeyCache``, which consults the static ones first).

In ``AUTH_MODE=passthrough`` the client's own OpenAI key goes upstream, and the record's
``user_id`` is ``passthrough_user_id(key)``: an HMAC-SHA256 of the key, so it is the same on
every replica and across restarts, differs between keys, and reveals nothing of the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from proxy.errors import Unauthorized
from proxy.headers import Headers, header_value
from proxy.settings import AuthMode

PASSTHROUGH_ID_LABEL = b"openai-log-proxy/passthrough-user-id/v1"
"""Domain separation: this HMAC's output can never coincide with another use of the key."""
PASSTHROUGH_ID_PREFIX = "pt-"
PASSTHROUGH_ID_HEX_CHARS = 32
"""128 bits: collisions between clients' keys are out of reach."""


def key_digest(key: str) -> bytes:
    """The sha256 of a key: the only form in which the proxy keeps one."""
    return hashlib.sha256(key.encode()).digest()


def passthrough_user_id(credential: str, secret: bytes | None = None) -> str:
    """The stable, non-reversible ``user_id`` of a client key in ``AUTH_MODE=passthrough``.

    Without ``secret`` (``PASSTHROUGH_USER_ID_SECRET``) anyone holding a key can compute
    its id, which is harmless for ids of high-entropy keys; with it, ids cannot be linked
    to keys (or across deployments) without the secret.
    """
    mac = hmac.new(
        secret or PASSTHROUGH_ID_LABEL,
        PASSTHROUGH_ID_LABEL + b"\x00" + credential.encode(),
        hashlib.sha256,
    )
    return PASSTHROUGH_ID_PREFIX + mac.hexdigest()[:PASSTHROUGH_ID_HEX_CHARS]


class KeyStore(Protocol):
    """Looks up the user a proxy key belongs to."""

    async def user_for(self, digest: bytes) -> str | None:
        """The user id of the key with this sha256 ``digest``, or ``None`` if unknown."""
        ...


class StaticKeyStore:
    """The keys of ``PROXY_API_KEYS`` (comma-separated ``KEY=USER_ID`` pairs)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        # Keyed by digest: a lookup's timing can only depend on the digest of what the
        # caller sent, which tells nothing about any stored key.
        self._users = {key_digest(key): user for key, user in pairs}

    async def user_for(self, digest: bytes) -> str | None:
        return self._users.get(digest)

    def __len__(self) -> int:
        return len(self._users)


@dataclass(frozen=True, slots=True)
class Caller:
    """The outcome of authentication for one request."""

    user_id: str | None
    credential: str | None
    """The secret the client presented (scrubbed from the record wherever it appears)."""


def presented_credential(headers: Headers) -> str | None:
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

    def __init__(
        self,
        mode: AuthMode,
        upstream_key: str | None,
        key_store: KeyStore,
        *,
        passthrough_secret: bytes | None = None,
    ) -> None:
        self.mode = mode
        self._key_store = key_store
        self._passthrough_secret = passthrough_secret
        self.upstream_authorization = f"Bearer {upstream_key}" if upstream_key else None

    @property
    def passthrough(self) -> bool:
        return self.mode == "passthrough"

    async def authenticate(self, headers: Headers) -> Caller:
        """The caller; raises ``Unauthorized`` when ``AUTH_MODE=keys`` and the key is not known."""
        return await self.authenticate_credential(presented_credential(headers))

    async def authenticate_credential(self, credential: str | None) -> Caller:
        """As ``authenticate``, for a key the client presented some other way (a subprotocol)."""
        if self.mode == "passthrough":
            user_id = (
                passthrough_user_id(credential, self._passthrough_secret) if credential else None
            )
            return Caller(user_id=user_id, credential=credential)
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
