"""OpenAI's organization Usage and Costs APIs, read page by page with an admin key.

Every endpoint answers a page (``object: "page"``) of daily buckets (``start_time``,
``end_time``, ``results``) and pages on with ``has_more`` and ``next_page`` (sent back as
``page``). A throttled (429) or failed (5xx) page is retried with doubling backoff; when
the retries run out, or the connection fails, the pages read so far are kept and the
result is marked partial. A missing, invalid or non-admin key is an ``AdminKeyError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any

import httpx

USAGE_ENDPOINTS = ("completions", "embeddings", "audio_speeches", "audio_transcriptions", "images")
MAX_BACKOFF_S = 30.0
DAYS_PER_PAGE = 31  # the APIs' largest daily page


class AdminKeyError(Exception):
    """The admin key is missing, invalid or not an admin key (one line for the user)."""


@dataclass
class Fetched:
    """The results read from one endpoint, each with its UTC day; ``partial`` says why not all."""

    results: list[tuple[date, dict[str, Any]]] = field(default_factory=list)
    partial: str | None = None


@dataclass(frozen=True, slots=True)
class AdminApi:
    """Where and how to read the APIs (from the explorer's settings)."""

    base_url: str
    key: str | None
    retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep


def _epoch(day: date) -> int:
    return int(datetime.combine(day, day_time(), tzinfo=UTC).timestamp())


def _key_error(status: int) -> AdminKeyError:
    if status == 403:
        return AdminKeyError("OPENAI_ADMIN_KEY is not an admin key (the Usage API answered 403)")
    return AdminKeyError(f"OPENAI_ADMIN_KEY is invalid (the Usage API answered {status})")


def fetch(api: AdminApi, path: str, day_from: date, day_to: date, group_by: list[str]) -> Fetched:
    """Every daily result of ``path`` (``organization/costs``) from ``day_from`` to ``day_to``."""
    if not api.key:
        raise AdminKeyError("OPENAI_ADMIN_KEY is not set: reconcile needs an OpenAI admin key")
    params: dict[str, Any] = {
        "start_time": _epoch(day_from),
        "end_time": _epoch(day_to + timedelta(days=1)),
        "bucket_width": "1d",
        "limit": DAYS_PER_PAGE,
    }
    if group_by:
        params["group_by"] = group_by
    fetched = Fetched()
    headers = {"authorization": f"Bearer {api.key}"}
    with httpx.Client(base_url=api.base_url.rstrip("/") + "/", timeout=api.timeout_s) as client:
        while True:
            page = _page(client, api, path, params, headers)
            if isinstance(page, str):
                fetched.partial = f"{path}: {page}"
                return fetched
            for bucket in page.get("data") or []:
                day = datetime.fromtimestamp(int(bucket["start_time"]), UTC).date()
                fetched.results.extend((day, result) for result in bucket.get("results") or [])
            if not page.get("has_more") or not page.get("next_page"):
                return fetched
            params["page"] = page["next_page"]


def _page(
    client: httpx.Client,
    api: AdminApi,
    path: str,
    params: dict[str, Any],
    headers: dict[str, str],
) -> dict[str, Any] | str:
    """One page as JSON, or why it could not be read after the retries."""
    delay_s = api.backoff_s
    problem = "no attempt made"
    for attempt in range(api.retries + 1):
        if attempt:
            api.sleep(delay_s)
            delay_s = min(delay_s * 2, MAX_BACKOFF_S)
        try:
            response = client.get(path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            problem = f"request failed: {type(exc).__name__}"
            continue
        if response.status_code in (401, 403):
            raise _key_error(response.status_code)
        if response.status_code == 429 or response.status_code >= 500:
            problem = f"HTTP {response.status_code} after {attempt + 1} attempts"
            continue
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        try:
            body = response.json()
        except ValueError:
            return "the answer is not JSON"
        return body if isinstance(body, dict) else "the answer is not a page"
    return problem
