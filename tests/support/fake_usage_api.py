"""A fake of OpenAI's organization Usage and Costs APIs: a real HTTP server on 127.0.0.1.

Shapes follow the official OpenAPI spec (openai/openai-openapi, ``openapi.json`` at commit
f85dbe223d40): ``GET /organization/usage/{completions,embeddings,audio_speeches,
audio_transcriptions,images}`` and ``GET /organization/costs`` take ``start_time``,
``end_time`` (exclusive), ``bucket_width``, ``group_by``, ``limit`` and ``page``, and answer
a ``UsageResponse``: ``{"object": "page", "data": [UsageTimeBucket], "has_more",
"next_page"}``; a bucket is ``{"object": "bucket", "start_time", "end_time", "results"}``
with ``organization.usage.<endpoint>.result`` or ``organization.costs.result`` items.
Both security schemes are ``AdminApiKeyAuth`` (a bearer admin key); 429 is documented.

Tests plant results per day, page after ``page_days`` buckets (to force paging), make the
next requests of a path fail with given statuses (to force retries), and read the log of
requests received.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.ports import free_port

ADMIN_KEY = "sk-admin-test-7f3a"
PROJECT_KEY = "sk-proj-test-not-admin"
_DAY_S = 86_400

# The required members of each result object, with the optional ones the spec lists.
_RESULT_FIELDS: dict[str, dict[str, Any]] = {
    "completions": {
        "object": "organization.usage.completions.result", "input_tokens": 0,
        "input_cached_tokens": 0, "input_uncached_tokens": 0, "output_tokens": 0,
        "input_audio_tokens": 0, "output_audio_tokens": 0, "num_model_requests": 0,
        "project_id": None, "user_id": None, "api_key_id": None, "model": None,
        "batch": None, "service_tier": None,
    },
    "embeddings": {
        "object": "organization.usage.embeddings.result", "input_tokens": 0,
        "num_model_requests": 0, "project_id": None, "user_id": None, "api_key_id": None,
        "model": None,
    },
    "audio_speeches": {
        "object": "organization.usage.audio_speeches.result", "characters": 0,
        "num_model_requests": 0, "project_id": None, "user_id": None, "api_key_id": None,
        "model": None,
    },
    "audio_transcriptions": {
        "object": "organization.usage.audio_transcriptions.result", "seconds": 0,
        "num_model_requests": 0, "project_id": None, "user_id": None, "api_key_id": None,
        "model": None,
    },
    "images": {
        "object": "organization.usage.images.result", "images": 0, "num_model_requests": 0,
        "size": None, "source": None, "project_id": None, "user_id": None,
        "api_key_id": None, "model": None,
    },
    "costs": {
        "object": "organization.costs.result", "amount": {"value": 0.0, "currency": "usd"},
        "line_item": None, "project_id": None,
    },
}


def _error(message: str, kind: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code,
                                 "param": None}}).encode()


class FakeUsageApi:
    """The planted figures, the failures to inject, and the requests received."""

    def __init__(self, page_days: int = 2) -> None:
        self.page_days = page_days
        self.results: dict[str, dict[date, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list))
        self.failures: dict[str, list[int]] = defaultdict(list)
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.base_url = ""

    def plant(self, endpoint: str, day: date, **fields: Any) -> None:
        """A result of ``endpoint`` (``completions`` ... ``costs``) on ``day``."""
        self.results[endpoint][day].append(_RESULT_FIELDS[endpoint] | fields)

    def fail_next(self, endpoint: str, *statuses: int) -> None:
        """The next requests to ``endpoint`` answer these statuses, in order."""
        self.failures[endpoint].extend(statuses)

    def answer(self, path: str, query: dict[str, list[str]], key: str | None) -> tuple[int, bytes]:
        self.requests.append((path, query))
        if key != ADMIN_KEY:
            if key == PROJECT_KEY:
                return 403, _error("You have insufficient permissions for this operation. "
                                   "Missing scopes: api.usage.read.", "invalid_request_error",
                                   None)
            return 401, _error("Incorrect API key provided.", "invalid_request_error",
                               "invalid_api_key")
        parts = path.strip("/").split("/")
        if parts[:1] != ["organization"]:
            return 404, _error("not found", "invalid_request_error", None)
        endpoint = parts[-1] if parts[1:2] == ["costs"] or parts[1:2] == ["usage"] else ""
        if endpoint not in _RESULT_FIELDS:
            return 404, _error("not found", "invalid_request_error", None)
        if self.failures[endpoint]:
            status = self.failures[endpoint].pop(0)
            return status, _error("Rate limit reached" if status == 429 else "server error",
                                  "requests" if status == 429 else "server_error", None)
        start = int(query["start_time"][0])
        end = int(query.get("end_time", [str(start + 7 * _DAY_S)])[0])
        page = query.get("page", [None])[0]
        first = int(page.removeprefix("page_")) if page else start
        limit = min(int(query.get("limit", ["7"])[0]), self.page_days)
        buckets = []
        at = first
        while at < end and len(buckets) < limit:
            day = datetime.fromtimestamp(at, UTC).date()
            buckets.append({"object": "bucket", "start_time": at, "end_time": at + _DAY_S,
                            "results": self.results[endpoint].get(day, [])})
            at += _DAY_S
        has_more = at < end
        body = {"object": "page", "data": buckets, "has_more": has_more,
                "next_page": f"page_{at}" if has_more else None}
        return 200, json.dumps(body).encode()


@contextmanager
def serve_fake_usage_api(api: FakeUsageApi) -> Iterator[FakeUsageApi]:
    """Serve ``api`` on a free port of 127.0.0.1; ``api.base_url`` is set while it runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            auth = self.headers.get("authorization") or ""
            key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            path = url.path.removeprefix("/v1")
            status, body = api.answer(path, parse_qs(url.query), key)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # shutdown() waits for the serving loop's next look at its flag: every 50 ms, not 500.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    api.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

