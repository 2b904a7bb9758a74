"""The record of one Realtime session, gathered while the session runs.

A session that was accepted is recorded as ``status_code`` 101 with ``streaming`` true, and
its body is ``{"object": "realtime.session", "subprotocol", "close", "events_total",
"events_omitted", "events_omitted_bytes", "responses", "usage", "events"}`` (events:
``proxy.realtime.events``). A refused handshake is recorded like any refused request.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, Literal

from proxy.headers import RawHeaders, recorded_headers
from proxy.model_name import model_of
from proxy.realtime.events import SessionLog
from proxy.realtime.handshake import recorded_handshake_headers
from proxy.redaction import redacted_query
from shared.record import ExchangeError, Record, RequestPart, ResponsePart

Side = Literal["client", "upstream", "proxy"]

SWITCHING_PROTOCOLS = 101
_REFUSAL_TEXT_CHARS = 1024


class SessionRecorder:
    """Everything the session's record needs; ``log`` takes the relayed messages."""

    def __init__(
        self, record_id: str, path: str, query: str, headers: RawHeaders, log: SessionLog
    ) -> None:
        self.record_id = record_id
        self.arrived_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._query = query
        shown_query, self.query_secrets = redacted_query(query)
        self._request = RequestPart(
            method="GET", path=path, query=shown_query, headers=recorded_handshake_headers(headers)
        )
        self.log = log
        self.user_id: str | None = None
        self.status_code: int | None = None
        self._response_headers: dict[str, str] = {}
        self._refusal_body: Any = None
        self._subprotocol: str | None = None
        self.close: dict[str, Any] | None = None
        self.error: ExchangeError | None = None

    def elapsed_ms(self) -> float:
        """Milliseconds since the handshake arrived."""
        return (time.monotonic() - self._started) * 1000

    def accepted(self, headers: RawHeaders, subprotocol: str | None) -> None:
        """The upstream switched protocols with these ``headers``."""
        self.status_code = SWITCHING_PROTOCOLS
        self._response_headers = recorded_headers(headers)
        self._subprotocol = subprotocol

    def refused(self, status_code: int, headers: RawHeaders, body: bytes) -> None:
        """The handshake was answered with an HTTP response (the proxy's or the upstream's)."""
        self.status_code = status_code
        self._response_headers = recorded_headers(headers)
        try:
            self._refusal_body = json.loads(body)
        except ValueError:
            self._refusal_body = body.decode("utf-8", "replace")[:_REFUSAL_TEXT_CHARS]

    def closed_by(self, side: Side, code: int, reason: str, relayed_code: int) -> None:
        """Who closed first, with which code and reason, and what the other side was sent."""
        if self.close is None:
            self.close = {
                "initiated_by": side,
                "code": code,
                "reason": reason,
                "relayed_code": relayed_code,
            }

    def fail(self, error_type: str, message: str) -> None:
        """Something went wrong on the proxy's side; the first failure is the one kept."""
        if self.error is None:
            self.error = ExchangeError(type=error_type, message=message)

    def build(self) -> Record:
        """The finished record; ``duration_ms`` runs from the handshake to now."""
        response: ResponsePart | None = None
        if self.status_code == SWITCHING_PROTOCOLS:
            body = {
                "object": "realtime.session",
                "subprotocol": self._subprotocol,
                "close": self.close,
                **self.log.summary(),
                "events": self.log.events(),
            }
            response = ResponsePart(
                status_code=self.status_code,
                headers=self._response_headers,
                body=body,
                streaming=True,
            )
        elif self.status_code is not None:
            response = ResponsePart(
                status_code=self.status_code,
                headers=self._response_headers,
                body=self._refusal_body,
            )
        return Record(
            id=self.record_id,
            timestamp=self.arrived_at,
            user_id=self.user_id,
            model=model_of(self._request.path, self._query, None) or self.log.model,
            duration_ms=round(self.elapsed_ms(), 1),
            request=self._request,
            response=response,
            error=self.error,
        )
