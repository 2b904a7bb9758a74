"""Usage per user, model and day: calls, errors, tokens, cost and latency percentiles.

Counts and percentiles come from the ``calls`` table; cost is computed here, at query
time, per model and day (prices change over time) and summed into each row. A row whose
calls used tokens of an unpriced model has no cost (``None``), never a partial sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

from explorer.index import Index, Progress
from explorer.partitions import Selection
from explorer.prices import PriceTable, Tokens

GroupKey = Literal["user", "model", "day"]
GROUP_KEYS: tuple[GroupKey, ...] = ("user", "model", "day")
_COLUMN = {"user": "user_id", "model": "model", "day": "day"}


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row of ``explorer report`` (the ``--format json`` fields, in order)."""

    user_id: str | None
    model: str | None
    day: str | None
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttfb_p50_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(ReportRow.__dataclass_fields__)


def where_clause(selection: Selection) -> tuple[str, dict[str, object]]:
    """SQL conditions on ``calls`` for ``selection`` (record fields, not file names)."""
    conditions = ["true"]
    params: dict[str, object] = {}
    if selection.day_from is not None:
        conditions.append("day >= $day_from")
        params["day_from"] = selection.day_from
    if selection.day_to is not None:
        conditions.append("day <= $day_to")
        params["day_to"] = selection.day_to
    if selection.user_id is not None:
        conditions.append("user_id = $user_id")
        params["user_id"] = selection.user_id
    if selection.model is not None:
        conditions.append("model IS NOT DISTINCT FROM $model")
        params["model"] = selection.model or None
    return " AND ".join(conditions), params


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


Grouping = tuple[GroupKey, ...]


def normal_grouping(keys: Iterable[GroupKey]) -> Grouping:
    """``keys`` in the canonical order user, model, day (how ``reports`` names groupings)."""
    chosen = set(keys)
    return tuple(key for key in GROUP_KEYS if key in chosen)


def _mask(by: Grouping) -> int:
    # A bit per key, user first, set when a row is NOT grouped by that key.
    return sum(1 << (2 - position) for position, key in enumerate(GROUP_KEYS) if key not in by)


def report(
    index: Index,
    selection: Selection,
    by: Sequence[GroupKey] = GROUP_KEYS,
    prices: PriceTable | None = None,
    progress: Progress | None = None,
) -> list[ReportRow]:
    """The rows for ``selection`` grouped by ``by`` (no key: one total row)."""
    grouping = normal_grouping(by)
    return reports(index, selection, [grouping], prices, progress)[grouping]


def reports(
    index: Index,
    selection: Selection,
    groupings: Sequence[Grouping],
    prices: PriceTable | None = None,
    progress: Progress | None = None,
) -> dict[Grouping, list[ReportRow]]:
    """Several groupings of ``selection`` at once (one pass over the table for all)."""
    prices = prices or PriceTable.load()
    index.sync(selection, progress)
    normalized = [normal_grouping(grouping) for grouping in groupings]
    wanted = set(normalized)
    sets = ", ".join(
        "(" + ", ".join(_COLUMN[key] for key in grouping) + ")" for grouping in sorted(wanted)
    )
    used = {key for grouping in wanted for key in grouping}
    # GROUPING() accepts only columns some set groups by; the others are never grouped.
    mask_sql = " + ".join(
        f"{1 << (2 - position)} * " + (f"GROUPING({_COLUMN[key]})" if key in used else "1")
        for position, key in enumerate(GROUP_KEYS)
    )
    picked = ", ".join(
        f"{_COLUMN[key] if key in used else 'NULL'} AS group_{key}" for key in GROUP_KEYS
    )
    where, params = where_clause(selection)
    with index.connection() as con:
        totals = con.execute(
            f"""
            SELECT {picked}, {mask_sql} AS grouping_mask,
                   count(*), count(*) FILTER (WHERE is_error),
                   sum(input_tokens), sum(output_tokens), sum(cached_tokens),
                   quantile_cont(duration_ms, [0.5, 0.95, 0.99]), quantile_cont(ttfb_ms, 0.5)
            FROM calls WHERE {where}
            GROUP BY GROUPING SETS ({sets})
            ORDER BY group_day NULLS FIRST, group_model NULLS FIRST, group_user NULLS FIRST
            """,
            params,
        ).fetchall()
        # Prices depend on the model and the day: cost is summed from this finest grouping.
        priced = con.execute(
            f"""
            SELECT user_id, model, day, sum(input_tokens), sum(output_tokens), sum(cached_tokens)
            FROM calls WHERE {where} GROUP BY user_id, model, day
            """,
            params,
        ).fetchall()
    masks = {_mask(grouping): grouping for grouping in wanted}
    costs: dict[tuple[int, Any, Any, Any], float | None] = {}
    for user_id, model, day, tokens_in, tokens_out, cached in priced:
        part = prices.cost_usd(model, day, Tokens(tokens_in, tokens_out, cached))
        for mask, grouping in masks.items():
            key = (
                mask,
                user_id if "user" in grouping else None,
                model if "model" in grouping else None,
                day if "day" in grouping else None,
            )
            previous = costs.get(key, 0.0)
            costs[key] = None if part is None or previous is None else previous + part
    result: dict[Grouping, list[ReportRow]] = {grouping: [] for grouping in wanted}
    for row in totals:
        user_id, model, day, mask, calls, errors, t_in, t_out, t_cached, latency, ttfb = row
        # One sort for the three latency percentiles; null when no call has a duration.
        p50, p95, p99 = latency if latency is not None else (None, None, None)
        result[masks[mask]].append(
            ReportRow(
                user_id=user_id,
                model=model,
                day=day.isoformat() if isinstance(day, date) else None,
                calls=calls,
                errors=errors,
                input_tokens=int(t_in or 0),
                output_tokens=int(t_out or 0),
                cached_tokens=int(t_cached or 0),
                cost_usd=costs.get((mask, user_id, model, day), 0.0),
                p50_ms=_round(p50),
                p95_ms=_round(p95),
                p99_ms=_round(p99),
                ttfb_p50_ms=_round(ttfb),
            )
        )
    return {grouping: result[grouping] for grouping in normalized}
