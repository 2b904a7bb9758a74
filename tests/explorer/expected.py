"""The report computed directly from the files, independently of the explorer's code."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def read_records(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


class Malformed(Exception):
    """A usage count that is not a non-negative int64."""


_PATHS = {
    "input": (("prompt_tokens",), ("input_tokens",)),
    "output": (("completion_tokens",), ("output_tokens",)),
    "cached": (("prompt_tokens_details", "cached_tokens"),
               ("input_tokens_details", "cached_tokens"),
               ("input_token_details", "cached_tokens")),
    "audio_in": (("prompt_tokens_details", "audio_tokens"), ("input_token_details", "audio_tokens"),
                 ("input_tokens_details", "audio_tokens")),
    "cached_audio": (("input_token_details", "cached_tokens_details", "audio_tokens"),),
    "image_in": (("input_tokens_details", "image_tokens"),),
    "audio_out": (("completion_tokens_details", "audio_tokens"),
                  ("output_token_details", "audio_tokens")),
}


def _dig(usage: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = usage
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _count(usage: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> int:
    value = next((v for p in paths if (v := _dig(usage, p)) is not None), None)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value < 2**63:
        raise Malformed(value)
    return value


def usage_of(record: dict[str, Any]) -> dict[str, Any]:
    """Every unit a record used, read straight from its JSON (raises Malformed)."""
    request = record.get("request") or {}
    response = record.get("response") or {}
    body = response.get("body") if isinstance(response.get("body"), dict) else {}
    usage = body.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise Malformed(usage)
    usage = usage or {}
    units: dict[str, Any] = {name: _count(usage, paths) for name, paths in _PATHS.items()}
    seconds = usage.get("seconds") if usage.get("type") == "duration" else body.get("duration")
    if seconds is not None and (type(seconds) not in (int, float) or seconds < 0):
        raise Malformed(seconds)
    units["seconds"] = seconds or 0
    status = response.get("status_code")
    ok = status is not None and status < 400
    path = request.get("path") or ""
    request_body = request.get("body") if isinstance(request.get("body"), dict) else {}
    speech = ok and path.endswith("/audio/speech") and isinstance(request_body.get("input"), str)
    units["characters"] = len(request_body["input"]) if speech else 0
    images = ok and "/images/" in path and not usage and isinstance(body.get("data"), list)
    units["images"] = len(body["data"]) if images else 0
    units["size"] = request_body.get("size") if "/images/" in path else None
    units["quality"] = request_body.get("quality") if "/images/" in path else None
    units["tier"] = body.get("service_tier")
    return units


def _entry(prices: dict[str, Any], model: str | None, day: date) -> dict[str, Any] | None:
    for name in (model, re.sub(r"-(\d{4}-\d{2}-\d{2}|\d{4})$", "", model or "")):
        for entry in prices["prices"]:
            start = entry.get("effective_from") and date.fromisoformat(entry["effective_from"])
            end = entry.get("effective_to") and date.fromisoformat(entry["effective_to"])
            if entry["model"] == name and (not start or day >= start) and (not end or day < end):
                return entry
    return None


def record_cost(prices: dict[str, Any], record: dict[str, Any], day: date) -> float | None:
    """The record's cost in USD; None when it is unpriced (malformed, or a unit lacks a price)."""
    try:
        u = usage_of(record)
    except Malformed:
        return None
    if not (u["input"] or u["output"] or u["seconds"] or u["characters"] or u["images"]):
        return 0.0
    body = (record.get("response") or {}).get("body")
    served = body.get("model") if isinstance(body, dict) else None
    entry = _entry(prices, record.get("model"), day) or _entry(prices, served, day)
    if entry is None:
        return None
    text = entry
    if u["tier"] not in (None, "default", "auto", "standard"):
        text = (entry.get("tiers") or {}).get(u["tier"]) or {}
    cached = min(u["cached"], u["input"])
    cached_audio = min(u["cached_audio"], cached)
    audio_in = max(u["audio_in"] - cached_audio, 0)
    size = u["size"] or "1024x1024"
    keys = [f"{u['quality']}/{size}", size] if u["quality"] else [size, f"standard/{size}"]
    image_price = next((entry["per_image"][k] for k in keys if k in entry.get("per_image", {})),
                       None)
    cached_price = text.get("cached_input")
    cached_audio_price = entry.get("cached_audio_input")
    parts = [
        (max(u["input"] - cached - audio_in - u["image_in"], 0) / 1e6, text.get("input")),
        ((cached - cached_audio) / 1e6,
         text.get("input") if cached_price is None else cached_price),
        (max(u["output"] - u["audio_out"], 0) / 1e6, text.get("output")),
        (audio_in / 1e6, entry.get("audio_input")),
        (cached_audio / 1e6,
         entry.get("audio_input") if cached_audio_price is None else cached_audio_price),
        (u["audio_out"] / 1e6, entry.get("audio_output")),
        (u["image_in"] / 1e6, entry.get("image_input")),
        (u["seconds"] / 60, entry.get("per_audio_minute")),
        (u["characters"] / 1e6, entry.get("per_million_characters")),
        (u["images"], image_price),
    ]
    if any(quantity and price is None for quantity, price in parts):
        return None
    return sum(quantity * price for quantity, price in parts if quantity)


def merged_prices(override: dict[str, Any]) -> dict[str, Any]:
    """The packaged table with ``override``'s models replacing the packaged ones."""
    packaged = json.loads((Path(__file__).parents[2] / "explorer" / "prices.json").read_text())
    replaced = {entry["model"] for entry in override["prices"]}
    kept = [entry for entry in packaged["prices"] if entry["model"] not in replaced]
    return {"prices": kept + override["prices"]}


def expected_report(
    directory: Path, prices: dict[str, Any], by: tuple[str, ...] = ("user", "model", "day")
) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for record in read_records(directory):
        day = datetime.fromisoformat(record["timestamp"]).astimezone(UTC).date()
        key = (
            record.get("user_id") if "user" in by else None,
            record.get("model") if "model" in by else None,
            day.isoformat() if "day" in by else None,
        )
        groups[key].append(record | {"_day": day})
    rows = []
    for (user_id, model, day), members in groups.items():
        cost = 0.0
        totals = [0, 0, 0]
        errors = priced = unpriced = unpriced_tokens = 0
        for record in members:
            try:
                u = usage_of(record)
                tokens = [u["input"], u["output"], u["cached"]]
            except Malformed:
                tokens = [0, 0, 0]
            totals = [a + b for a, b in zip(totals, tokens, strict=True)]
            response = record.get("response") or {}
            status = response.get("status_code")
            errors += bool(record.get("error") or status is None or status >= 400)
            usd = record_cost(prices, record, record["_day"])
            if usd is None:
                unpriced += 1
                unpriced_tokens += tokens[0] + tokens[1]
            else:
                cost += usd
                priced += usd > 0 or any(tokens)
        durations = [r["duration_ms"] for r in members if r.get("duration_ms") is not None]
        ttfbs = [r["ttfb_ms"] for r in members if r.get("ttfb_ms") is not None]
        rows.append({
            "user_id": user_id, "model": model, "day": day, "calls": len(members),
            "errors": errors, "input_tokens": totals[0], "output_tokens": totals[1],
            "cached_tokens": totals[2], "cost_usd": None if unpriced and not priced else cost,
            "p50_ms": percentile(durations, 0.5), "p95_ms": percentile(durations, 0.95),
            "p99_ms": percentile(durations, 0.99), "ttfb_p50_ms": percentile(ttfbs, 0.5),
            "unpriced_calls": unpriced, "unpriced_tokens": unpriced_tokens,
        })
    return rows
