"""Cost per user, model and day, priced at query time from the ``calls`` table.

Calls are summed per user, model, day and everything their price depends on (service
tier, image size and quality, which units they used), so every group is either wholly
priced or wholly unpriced: a call never counts half. A call whose usage is malformed
is unpriced with its reason; a call without usage costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from explorer.index import Index
from explorer.prices import PriceTable, Quote, Usage

# A bit per unit a call used: calls grouped together then need the same prices.
_UNITS_MASK = " + ".join(
    f"{1 << bit} * ({condition})::INTEGER"
    for bit, condition in enumerate(
        (
            "input_tokens > cached_tokens",
            "cached_tokens > 0",
            "output_tokens > audio_output_tokens",
            "audio_input_tokens > 0",
            "cached_audio_tokens > 0",
            "audio_output_tokens > 0",
            "image_input_tokens > 0",
            "audio_seconds > 0",
            "speech_characters > 0",
            "images > 0",
        )
    )
)


_KINDS = (
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "cached_audio_tokens",
    "audio_output_tokens",
    "image_input_tokens",
    "audio_seconds",
    "speech_characters",
    "images",
)
_SUMS = ", ".join(f"sum({kind})" for kind in _KINDS)


def _usage(
    counts: dict[str, Any], size: str | None, quality: str | None, tier: str | None
) -> Usage:
    """A ``Usage`` from the ``_KINDS`` columns of one call or the sums of a group."""
    return Usage(
        input=int(counts["input_tokens"]),
        cached=int(counts["cached_tokens"]),
        output=int(counts["output_tokens"]),
        audio_input=int(counts["audio_input_tokens"]),
        cached_audio_input=int(counts["cached_audio_tokens"]),
        audio_output=int(counts["audio_output_tokens"]),
        image_input=int(counts["image_input_tokens"]),
        audio_seconds=float(counts["audio_seconds"]),
        characters=int(counts["speech_characters"]),
        images=int(counts["images"]),
        image_size=size,
        image_quality=quality,
        service_tier=tier,
    )


@dataclass(frozen=True, slots=True)
class PricedGroup:
    """Calls of one user, model and day that share a price, and what they cost."""

    user_id: str | None
    model: str | None
    day: date
    calls: int
    tokens: int
    usd: float | None
    """None: unpriced (see ``missing``, ``problem``); 0.0 for calls without usage."""
    has_usage: bool
    priced_as: str | None
    source: str | None
    missing: tuple[str, ...]
    problem: str | None


def priced_groups(
    index: Index, where: str, params: dict[str, object], prices: PriceTable
) -> Iterator[PricedGroup]:
    """Every group of the calls matching ``where``, priced with ``prices``."""
    with index.connection() as con:
        rows = con.execute(
            f"""
            SELECT user_id, model, day, response_model, service_tier, image_size,
                   image_quality, usage_problem, count(*), {_SUMS}
            FROM calls WHERE {where}
            GROUP BY user_id, model, day, response_model, service_tier, image_size,
                     image_quality, usage_problem, {_UNITS_MASK}
            """,
            params,
        ).fetchall()
    for row in rows:
        user_id, model, day, served, tier, size, quality, problem, calls, *sums = row
        usage = _usage(dict(zip(_KINDS, sums, strict=True)), size, quality, tier)
        tokens = usage.input + usage.output
        if problem is not None:
            yield PricedGroup(
                user_id, model, day, calls, tokens, None, True, None, None, (), problem
            )
            continue
        quote = quote_call(prices, model, served, day, usage)
        yield PricedGroup(
            user_id=user_id,
            model=model,
            day=day,
            calls=calls,
            tokens=tokens,
            usd=quote.usd,
            has_usage=not usage.is_empty,
            priced_as=quote.priced_as,
            source=quote.entry.source if quote.entry else None,
            missing=tuple(quote.missing),
            problem=None,
        )


def quote_call(
    prices: PriceTable, model: str | None, served: str | None, day: date, usage: Usage
) -> Quote:
    """The price of a call of ``model``, else of the model the response names (``served``).

    An Azure deployment is named by its owner (``my-gpt4o``), but its responses name the
    model behind it; that model's price is used, and the quote says so.
    """
    quote = prices.quote(model, day, usage)
    if quote.entry is not None or quote.usd is not None or served in (None, model):
        return quote
    fallback = prices.quote(served, day, usage)
    if fallback.entry is None:
        return quote
    return replace(fallback, priced_as=fallback.priced_as or served)


def _reason(problem: str | None, has_price: bool, missing: Sequence[str]) -> str:
    if problem is not None:
        return f"malformed usage: {problem}"
    return "no price for " + ", ".join(missing) if has_price else "no price for this model"


def unpriced_reason(group: PricedGroup) -> str:
    """Why ``group`` has no cost, in a few words."""
    return _reason(group.problem, group.source is not None, group.missing)


@dataclass(frozen=True, slots=True)
class RecordCost:
    """One record's usage by kind and its price (for the record page)."""

    tokens: dict[str, float]
    """Non-zero counts by kind: input, cached, output, reasoning, audio, image, seconds, ..."""
    usd: float | None
    source: str | None
    priced_as: str | None
    unpriced_reason: str | None


def record_cost(index: Index, record_id: str, prices: PriceTable) -> RecordCost | None:
    """The usage and cost of the record ``record_id`` (None when the table has no such id)."""
    kinds = ", ".join(_KINDS)
    with index.connection() as con:
        found = con.execute(
            f"SELECT model, day, response_model, service_tier, image_size, image_quality, "
            f"usage_problem, {kinds} "
            "FROM calls WHERE id = $id LIMIT 1",
            {"id": record_id},
        ).fetchone()
    if found is None:
        return None
    model, day, served, tier, size, quality, problem, *counts = found
    values = dict(zip(_KINDS, counts, strict=True))
    tokens = {kind: value for kind, value in values.items() if value}
    if problem is not None:
        return RecordCost(tokens, None, None, None, _reason(problem, False, ()))
    usage = _usage(values, size, quality, tier)
    quote = quote_call(prices, model, served, day, usage)
    has_price = quote.entry is not None
    reason = None if quote.usd is not None else _reason(None, has_price, quote.missing)
    source = quote.entry.source if quote.entry else None
    return RecordCost(tokens, quote.usd, source, quote.priced_as, reason)
