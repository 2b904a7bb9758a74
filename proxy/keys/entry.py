"""One proxy key as Redis stores it, and how a new key is made."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from pydantic import BaseModel, Field

KEY_PREFIX = "pk-"
KEY_ID_HEX_CHARS = 12
KEY_SECRET_BYTES = 24
"""192 random bits: the reason a fast hash is enough (see ``proxy.keys``)."""


class KeyEntry(BaseModel):
    """What Redis holds for one key: never the key itself, only its sha256."""

    key_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    expires_at: datetime | None = None

    @property
    def prefix(self) -> str:
        """How the key begins: enough to recognise it, nothing to use it."""
        return f"{KEY_PREFIX}{self.key_id}-"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: bytes | str) -> KeyEntry:
        """Parse an entry; raises ``pydantic.ValidationError`` when it is not one."""
        return cls.model_validate_json(data)


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(user_id: str, expires_at: datetime | None = None) -> tuple[str, KeyEntry]:
    """A fresh key and its entry; the key is returned once and kept nowhere."""
    key_id = secrets.token_hex(KEY_ID_HEX_CHARS // 2)
    key = f"{KEY_PREFIX}{key_id}-{secrets.token_hex(KEY_SECRET_BYTES)}"
    entry = KeyEntry(
        key_id=key_id,
        user_id=user_id,
        sha256=sha256_hex(key),
        created_at=datetime.now(UTC),
        expires_at=expires_at,
    )
    return key, entry
