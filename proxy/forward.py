"""``/v1/{path}``: one exchange, from the client's request to the published record.

A plain ASGI endpoint rather than a FastAPI route: it needs ``receive`` for itself, to
stream the request body upstream and then to notice a client that goes away while the
response is relayed (as Starlette's ``StreamingResponse`` does). The sequence::

    build and check the upstream URL (``proxy.targets``) -> authenticate -> read or
    stream the body upstream -> check the URL once more, send -> relay status, headers
    and each raw chunk as it arrives -> end -> build, bound, scrub and queue the record
    (always; a moment later, ``proxy.publish.deferred``)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from functools import partial

import aiohttp
import yarl
from starlette.types import Receive, Scope, Send

from proxy.capture.decoding import is_identity
from proxy.capture.record_builder import RecordBuilder, is_event_stream
from proxy.capture.request_body import RequestBody
from proxy.errors import ClientDisconnected, InternalError, ProxyError
from proxy.headers import (
    RECORD_ID_HEADER,
    DecodedHeaders,
    client_response_headers,
    dated,
    header_value,
    http_date,
    presented_secrets,
    upstream_request_headers,
)
from proxy.publish.admission import refuse
from proxy.runtime import Runtime
from proxy.stream_usage import USAGE_PATHS, UsageStreamFilter, ask_for_usage
from proxy.upstream import UpstreamErrors
from shared.ids import new_record_id
from shared.logs import log_event

logger = logging.getLogger(__name__)

_DISCONNECT_MESSAGE = "The client closed the connection before the response was complete."


class ForwardEndpoint:
    """The ASGI app behind ``/v1/{path}``: every method, forwarded upstream, each call let
    in only while its record could be kept (``proxy.publish.admission``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime
        reservations = runtime.publishing.reservations  # admits everything under ``drop``
        if not reservations.admit():
            await refuse(scope, receive, send)
            return
        try:
            await Exchange(runtime, scope, receive, send).run()
        finally:
            reservations.release()


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(int(value), 0)
    except ValueError:
        return None


class Exchange:
    """One request and its response, relayed and recorded."""

    def __init__(
        self,
        runtime: Runtime,
        scope: Scope,
        receive: Receive,
        send: Send,
        refusal: ProxyError | None = None,
    ) -> None:
        self._runtime = runtime
        self._refusal = refusal
        self._settings = runtime.settings
        self._scope = scope
        self._receive = receive
        self._send = send
        self._method: str = scope["method"]
        self._headers = DecodedHeaders(scope["headers"])
        self._record = RecordBuilder(
            new_record_id(),
            self._method,
            scope["path"],
            scope["query_string"].decode("latin-1"),
            self._headers,
            self._settings.capture_limits,
        )
        self._body = RequestBody(
            receive,
            self._record.request_body,
            max_bytes=self._settings.max_request_bytes,
            read_whole_below_bytes=self._settings.record_max_body_bytes,
        )
        self._response_started = False
        self._response_complete = False
        self._client_gone = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def record_id(self) -> str:
        return self._record.record_id

    async def run(self) -> None:
        """Relay the exchange, then queue its record whatever happened."""
        self._runtime.metrics.inflight_streams.inc()
        task = asyncio.current_task()
        assert task is not None
        # asyncio's own cancellation rather than an anyio scope: anyio looks up the async
        # library on every scope, which cost more than the rest of the relay's bookkeeping.
        client_watch = self._runtime.client_watch
        client_watch.add(self, partial(self._start_watching, task))
        try:
            try:
                await self._forward()
            except ProxyError as exc:
                await self._answer_error(exc)
            except ClientDisconnected as exc:
                self._record.fail("client_disconnected", str(exc))
            except Exception:
                logger.exception("proxy_internal_error")
                await self._answer_error(InternalError("The proxy failed unexpectedly."))
        except asyncio.CancelledError:
            if self._client_gone and task.uncancel() == 0:
                return  # the watcher's cancel alone: the record says the client left
            self._record.fail("proxy_stopped", "The proxy stopped before the exchange completed.")
            raise
        except BaseException as exc:
            self._record.fail("proxy_error", f"{type(exc).__name__} in the proxy")
            raise
        finally:
            client_watch.discard(self)
            if self._watcher is not None:
                self._watcher.cancel()
            self._runtime.metrics.inflight_streams.dec()
            # No await from here on: the record is queued even if this task is cancelled.
            self._finish()

    async def _forward(self) -> None:
        if self._refusal is not None:
            raise self._refusal
        url = self._upstream_url()  # before anything is read: a refused target costs nothing
        caller = await self._runtime.authenticator.authenticate(self._headers)
        self._record.user_id = caller.user_id
        chunked = "chunked" in (header_value(self._headers, "transfer-encoding") or "").lower()
        content_length = None if chunked else _content_length(
            header_value(self._headers, "content-length")
        )
        content = await self._body.content(content_length, chunked=chunked)
        if isinstance(content, bytes) and self._may_ask_for_usage():
            asked = ask_for_usage(content)
            if asked is not None:
                content = asked  # ``Upstream.send`` frames it with its own length
                self._record.usage_injected = True
        authenticator = self._runtime.authenticator
        headers = upstream_request_headers(
            self._headers,
            passthrough=authenticator.passthrough,
            authorization=authenticator.upstream_authorization,
        )
        if self._record.usage_injected:
            # The proxy takes its usage chunk back out of the stream, which it can do only
            # on bytes it reads as they are: a compressed stream would reach the client
            # with a chunk the client never asked for.
            headers = [(name, value) for name, value in headers if name != "accept-encoding"]
            headers.append(("accept-encoding", "identity"))
        if content_length and not isinstance(content, bytes):
            # A streamed body keeps the client's framing: with a Content-Length, aiohttp
            # sends it as such instead of chunked (some upstreams refuse chunked uploads).
            headers.append(("content-length", str(content_length)))
        self._settings.upstream_base.check(url)
        started = time.monotonic()
        # Earlier calls' records are built once this request is on its way, while the
        # upstream works on it (``DeferredRecords.run_soon``).
        self._runtime.publishing.deferred.run_soon()
        response = await self._runtime.upstream.send(self._method, url, headers, content)
        self._runtime.metrics.upstream_ttfb.observe(time.monotonic() - started)
        try:
            await self._relay(response)
            self._runtime.metrics.upstream_latency.observe(time.monotonic() - started)
        finally:
            # Back to the pool when the body was read to its end, closed otherwise: after
            # a client disconnect too, and closing the upstream connection promptly is the
            # point.
            response.release()

    def _may_ask_for_usage(self) -> bool:
        return (
            self._settings.asks_stream_usage
            and self._method == "POST"
            and self._scope["path"] in USAGE_PATHS
        )

    def _usage_filter(self, headers: DecodedHeaders) -> UsageStreamFilter | None:
        """What takes out of the stream the usage the proxy asked for (``proxy.stream_usage``)."""
        if not is_event_stream(headers.get("content-type")):
            return None  # an error, in JSON: nothing was added to it
        metrics = self._runtime.metrics
        if not is_identity(headers.get("content-encoding")):
            metrics.stream_usage_untouched_streams.inc()
            return None
        return UsageStreamFilter(
            metrics.stream_usage_untouched_events.inc, self._settings.capture_limits.sse_line_chars
        )

    def _upstream_url(self) -> yarl.URL:
        raw_path: bytes = self._scope.get("raw_path") or self._scope["path"].encode()
        return self._settings.upstream_base.url_for(raw_path, self._scope["query_string"])

    async def _relay(self, response: aiohttp.ClientResponse) -> None:
        headers = DecodedHeaders(response.raw_headers)
        self._record.response_started(response.status, headers)
        await self._send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": dated(client_response_headers(response.raw_headers, self.record_id)),
            }
        )
        self._response_started = True
        usage_filter = self._usage_filter(headers) if self._record.usage_injected else None
        content = response.content
        with UpstreamErrors("while sending the response"):
            # Each piece as it is read from the socket.
            async for chunk in content.iter_any():
                shown = chunk if usage_filter is None else usage_filter.feed(chunk)
                if usage_filter is None and content.at_eof():
                    # The rest of the body (a small answer's whole body) ends the response:
                    # one send, not a second, empty one.
                    self._response_complete = True
                    await self._send({"type": "http.response.body", "body": shown})
                    self._record.response_chunk(chunk)
                    self._record.response_ended()
                    return
                if shown:
                    body = {"type": "http.response.body", "body": shown, "more_body": True}
                    await self._send(body)
                self._record.response_chunk(chunk)
        if usage_filter is not None and (rest := usage_filter.flush()):
            await self._send({"type": "http.response.body", "body": rest, "more_body": True})
        self._record.response_ended()
        self._response_complete = True
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _answer_error(self, exc: ProxyError) -> None:
        self._record.fail(exc.code, exc.message)
        if self._response_started:
            # Too late for an error status: returning without completing the response
            # makes the server close the connection, so the client sees it is cut short.
            return
        body = exc.body()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (RECORD_ID_HEADER.encode(), self.record_id.encode()),
            *exc.headers,
            (b"date", http_date()),
        ]
        self._record.proxy_answered(exc.status, headers, json.loads(body))
        self._response_complete = True
        await self._send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    def _start_watching(self, exchange: asyncio.Task[None]) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch_disconnect(exchange))

    async def _watch_disconnect(self, exchange: asyncio.Task[None]) -> None:
        # Only once the body is read: until then ``receive`` belongs to the body stream.
        await self._body.done.wait()
        while (await self._receive())["type"] != "http.disconnect":
            pass
        if not self._response_complete:
            # Cancels ``_forward`` at its current await; ``run`` records and cleans up.
            self._record.fail("client_disconnected", _DISCONNECT_MESSAGE)
            self._client_gone = True
            exchange.cancel()

    def _finish(self) -> None:
        # The record's work runs a moment later (``proxy.publish.deferred``), off the path
        # of the client's next request; its room stays set aside until then.
        self._record.ended()
        publishing = self._runtime.publishing
        release = publishing.reservations.carry()
        publishing.deferred.add(partial(self._queue_record, release))

    def _queue_record(self, release: Callable[[], None]) -> None:
        try:
            self._build_and_queue()
        except Exception:
            logger.exception("record_build_failed")
        finally:
            release()

    def _build_and_queue(self) -> None:
        record = self._record.build()
        presented = [*presented_secrets(self._headers), *self._record.query_secrets]
        self._runtime.publish_json(record, self._method, presented)
        path: str = self._scope["path"]
        log_event(
            logger,
            "upstream_request_completed",
            method=self._method,
            # A refused target may hold control characters: never a second log line.
            path=path if path.isprintable() else ascii(path),
            status=record.status,
            duration_ms=record.fields["duration_ms"],
            record_id=record.record_id,
            error=record.error_type,
        )
