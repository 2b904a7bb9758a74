"""The report computed directly from the files, independently of the explorer's code."""

from __future__ import annotations

import json
import math
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


def _tokens(record: dict[str, Any]) -> tuple[int, int, int]:
    body = (record.get("response") or {}).get("body")
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0, 0, 0
    if "input_tokens" in usage:
        details = usage.get("input_tokens_details") or {}
        return usage["input_tokens"], usage.get("output_tokens", 0), details.get("cached_tokens", 0)
    details = usage.get("prompt_tokens_details") or {}
    return (usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
            details.get("cached_tokens", 0))


def _price(prices: dict[str, Any], model: str | None, day: date) -> dict[str, Any] | None:
    for entry in prices["prices"]:
        start = entry["effective_from"] and date.fromisoformat(entry["effective_from"])
        end = entry["effective_to"] and date.fromisoformat(entry["effective_to"])
        if entry["model"] == model and (not start or day >= start) and (not end or day < end):
            return entry
    return None


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
        cost: float | None = 0.0
        totals = [0, 0, 0]
        errors = 0
        for record in members:
            tokens_in, tokens_out, cached = _tokens(record)
            totals = [totals[0] + tokens_in, totals[1] + tokens_out, totals[2] + cached]
            response = record.get("response") or {}
            status = response.get("status_code")
            errors += bool(record.get("error") or status is None or status >= 400)
            if tokens_in or tokens_out:
                price = _price(prices, record.get("model"), record["_day"])
                if price is None or cost is None:
                    cost = None
                else:
                    cached_price = price["cached_input"]
                    cached_price = price["input"] if cached_price is None else cached_price
                    cost += ((tokens_in - cached) * price["input"] + cached * cached_price
                             + tokens_out * price["output"]) / 1_000_000
        durations = [r["duration_ms"] for r in members if r.get("duration_ms") is not None]
        ttfbs = [r["ttfb_ms"] for r in members if r.get("ttfb_ms") is not None]
        rows.append({
            "user_id": user_id, "model": model, "day": day, "calls": len(members),
            "errors": errors, "input_tokens": totals[0], "output_tokens": totals[1],
            "cached_tokens": totals[2], "cost_usd": cost,
            "p50_ms": percentile(durations, 0.5), "p95_ms": percentile(durations, 0.95),
            "p99_ms": percentile(durations, 0.99), "ttfb_p50_ms": percentile(ttfbs, 0.5),
        })
    return rows
