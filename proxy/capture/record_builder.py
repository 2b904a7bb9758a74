"""Building an exchange's record while the request and the response flow past.

Nothing here holds a body beyond the record's cap, and nothing delays the bytes the
client is waiting for: each chunk is relayed first and only then accounted for.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from proxy.capture.assembly import StreamAssembler, assembler_for
from proxy.capture.bodies import BodyCapture
from proxy.capture.decoding import Decoder, DecodingError, decoder_for, is_identity
from proxy.capture.limits import CaptureLimits
from proxy.capture.record_json import RecordJson, record_json
from proxy.headers import Headers, header_value, recorded_headers
from proxy.model_name import model_of
from proxy.redaction import redacted_query
from shared.record import UsageSource


def is_event_stream(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` value is ``text/event-stream``."""
    return (content_type or "").split(";")[0].strip().lower() == "text/event-stream"


class ResponseCapture:
    """The response body for the record: decoded (bounded), then assembled (SSE) or captured."""

    def __init__(self, path: str, headers: Headers, limits: CaptureLimits) -> None:
        content_type = header_value(headers, "content-type")
        self.streaming = is_event_stream(content_type)
        encoding = header_value(headers, "content-encoding")
        # Plain bodies skip the decoder: their size is bounded by the caps, not a decoder.
        self._decoder: Decoder | None = (
            None if is_identity(encoding) else decoder_for(encoding, limits.decoded_bytes)
        )
        readable = is_identity(encoding) or self._decoder is not None
        self._decoding_error: str | None = None
        self._assembler: StreamAssembler | None = (
            assembler_for(path, limits) if self.streaming and readable else None
        )
        # Bytes in an unknown encoding are kept as metadata only, whatever their type.
        self._capture = BodyCapture(
            content_type if readable else "application/octet-stream", limits
        )

    def feed(self, raw: bytes) -> None:
        """Account for the next raw chunk the client was sent."""
        if self._decoder is None:
            self._consume(raw)
            return
        if self._decoding_error is not None:
            return
        try:
            for piece in self._decoder.decode(raw):
                self._consume(piece)
        except DecodingError as exc:
            # A corrupt stream: the record says so and keeps what was decoded before.
            self._decoding_error = str(exc) or type(exc).__name__

    def _consume(self, data: bytes) -> None:
        if self._assembler is not None:
            self._assembler.feed(data)
        else:
            self._capture.feed(data)

    def finish(self) -> None:
        """The upstream body has ended (nothing is left buffered: kept for symmetry)."""

    def result(self) -> Any:
        body = self._assembler.result() if self._assembler is not None else self._capture.result()
        notes: dict[str, Any] = {}
        if self._decoder is not None and self._decoder.cut:
            notes["decoded_truncated_at_bytes"] = self._decoder.decoded_bytes
        if self._decoding_error is not None:
            notes["decoding_error"] = self._decoding_error
        if not notes:
            return body
        if isinstance(body, dict):
            return {**body, **notes}
        return {"truncated": True, "text": body, **notes}


class RecordBuilder:
    """Everything the record of one exchange needs, gathered as the exchange runs."""

    def __init__(
        self,
        record_id: str,
        method: str,
        path: str,
        query: str,
        headers: Headers,
        limits: CaptureLimits,
    ) -> None:
        self.record_id = record_id
        self.arrived_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._ended: float | None = None
        self._limits = limits
        self._query, self.query_secrets = redacted_query(query)
        self._method = method
        self._path = path
        self._request_headers = headers  # recorded (secrets out) when the record is built
        self.request_body = BodyCapture(header_value(headers, "content-type"), limits)
        self.user_id: str | None = None
        self.ttfb_ms: float | None = None
        self.status_code: int | None = None
        self._response_headers: Headers = ()
        self._response: ResponseCapture | None = None
        self._own_body: Any = None
        self.error: dict[str, str] | None = None
        self.usage_injected = False
        """Whether the proxy asked the upstream for the usage (``proxy.stream_usage``)."""

    def response_started(self, status_code: int, headers: Headers) -> None:
        """The upstream answered with ``status_code`` and ``headers``."""
        self.ttfb_ms = round((time.monotonic() - self._started) * 1000, 3)
        self.status_code = status_code
        self._response_headers = headers  # recorded (secrets out) when the record is built
        self._response = ResponseCapture(self._path, headers, self._limits)

    def response_chunk(self, raw: bytes) -> None:
        """A raw chunk of the upstream's body, already relayed to the client."""
        if self._response is not None:
            self._response.feed(raw)

    def response_ended(self) -> None:
        """The upstream's body ended normally."""
        if self._response is not None:
            self._response.finish()

    def proxy_answered(self, status_code: int, headers: Headers, body: Any) -> None:
        """The proxy answered by itself (an error), not the upstream."""
        self.status_code = status_code
        self._response_headers = headers
        self._response = None
        self._own_body = body

    def fail(self, error_type: str, message: str) -> None:
        """Something went wrong on the proxy's side; the first failure is the one kept."""
        if self.error is None:
            self.error = {"type": error_type, "message": message}

    def ended(self) -> None:
        """The exchange is over: ``duration_ms`` runs to now, however late ``build`` is."""
        self._ended = time.monotonic()

    def build(self) -> RecordJson:
        """The finished record, as JSON; ``duration_ms`` runs from arrival to ``ended``
        (or to now)."""
        request_body = self.request_body.result()
        response: dict[str, Any] | None = None
        usage_source: UsageSource | None = None
        if self.status_code is not None:
            streaming = self._response is not None and self._response.streaming
            body = self._response.result() if self._response is not None else self._own_body
            response = {
                "status_code": self.status_code,
                "headers": recorded_headers(self._response_headers),
                "body": body,
                "streaming": streaming,
            }
            if isinstance(body, dict) and body.get("usage") is not None:
                usage_source = "injected" if self.usage_injected else "upstream"
        return record_json(
            record_id=self.record_id,
            timestamp=self.arrived_at,
            user_id=self.user_id,
            model=model_of(
                self._path,
                self._query,
                request_body,
                self.request_body.head,
                self.request_body.tail,
            ),
            duration_ms=round(((self._ended or time.monotonic()) - self._started) * 1000, 3),
            ttfb_ms=self.ttfb_ms,
            request={
                "method": self._method,
                "path": self._path,
                "query": self._query,
                "headers": recorded_headers(self._request_headers),
                "body": request_body,
            },
            response=response,
            error=self.error,
            usage_source=usage_source,
        )
