"""The exchange record: one JSON object per line, written by the proxy and read by the shipper.

Both services go through this module, so a record survives the round trip
proxy -> Redis (or spool) -> shipper -> file unchanged. Unknown top-level fields
are kept, so a newer producer's records pass through an older shipper intact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

SCHEMA_VERSION = 1

REDACTED = "[REDACTED]"
"""Marker that replaces the value of a secret header."""

UsageSource = Literal["upstream", "injected"]
"""Where a record's usage came from: the upstream's own answer, or a usage chunk the proxy
asked for on the client's behalf (``docs/usage.md``)."""


class RequestPart(BaseModel):
    """What the client sent."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class ResponsePart(BaseModel):
    """What the client got back (for a stream: the assembled final object)."""

    status_code: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    streaming: bool = False


class ExchangeError(BaseModel):
    """What went wrong on the proxy's side of an exchange."""

    type: str
    message: str


class Record(BaseModel):
    """One completed exchange between a client and the upstream."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    id: str = Field(min_length=1)
    timestamp: datetime
    user_id: str | None = None
    model: str | None = None
    duration_ms: float | None = None
    ttfb_ms: float | None = None
    """From the request's arrival to the upstream's first response byte (its headers)."""
    request: RequestPart
    response: ResponsePart | None = None
    error: ExchangeError | None = None
    # A plain string, not ``UsageSource``: a value from a newer producer must not make an
    # older shipper dead-letter the record. Absent from the JSON when there is no usage.
    usage_source: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="`upstream` or `injected`: where the response's usage came from.",
    )

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # A producer that sends a naive timestamp means UTC; anything else is converted.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_serializer("timestamp")
    def _iso(self, value: datetime) -> str:
        return value.isoformat()

    def to_json(self) -> bytes:
        """The record as compact UTF-8 JSON on one line (no trailing newline)."""
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Record:
        """Parse and validate a record; raises ``pydantic.ValidationError`` when it is not one."""
        return cls.model_validate_json(data)
