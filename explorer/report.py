"""Usage per user, model and day: calls, errors, tokens, cost and latency percentiles.

Counts and percentiles come from the ``calls`` table; cost is priced at query time (see
``explorer.costs``) and summed into each row. ``cost_usd`` is the priced part; the calls
that could not be priced are counted in ``unpriced_calls`` (their tokens in
``unpriced_tokens``). ``cost_usd`` is None only when calls used something and none of it
was priced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Literal

from explorer.costs import priced_groups
from explorer.index import Index, Progress
from explorer.partitions import Selection
from explorer.prices import PriceTable

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
    unpriced_calls: int = 0
    unpriced_tokens: int = 0

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


@dataclass(slots=True)
class _Cost:
    """The cost of a row, summed from its priced groups."""

    usd: float = 0.0
    priced_calls: int = 0
    unpriced_calls: int = 0
    unpriced_tokens: int = 0

    def add(self, usd: float | None, calls: int, tokens: int, has_usage: bool) -> None:
        if usd is None:
            self.unpriced_calls += calls
            self.unpriced_tokens += tokens
        else:
            self.usd += usd
            self.priced_calls += calls if has_usage else 0

    @property
    def priced_usd(self) -> float | None:
        return None if self.unpriced_calls and not self.priced_calls else self.usd


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
        # Under the same lock: the costs are of the calls the totals counted.
        groups = list(priced_groups(index, where, params, prices))
    masks = {_mask(grouping): grouping for grouping in wanted}
    costs: dict[tuple[int, Any, Any, Any], _Cost] = {}
    for group in groups:
        for mask, grouping in masks.items():
            key = (
                mask,
                group.user_id if "user" in grouping else None,
                group.model if "model" in grouping else None,
                group.day if "day" in grouping else None,
            )
            costs.setdefault(key, _Cost()).add(
                group.usd, group.calls, group.tokens, group.has_usage
            )
    result: dict[Grouping, list[ReportRow]] = {grouping: [] for grouping in wanted}
    for row in totals:
        user_id, model, day, mask, calls, errors, t_in, t_out, t_cached, latency, ttfb = row
        # One sort for the three latency percentiles; null when no call has a duration.
        p50, p95, p99 = latency if latency is not None else (None, None, None)
        cost = costs.get((mask, user_id, model, day), _Cost())
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
                cost_usd=cost.priced_usd,
                p50_ms=_round(p50),
                p95_ms=_round(p95),
                p99_ms=_round(p99),
                ttfb_p50_ms=_round(ttfb),
                unpriced_calls=cost.unpriced_calls,
                unpriced_tokens=cost.unpriced_tokens,
            )
        )
    return {grouping: result[grouping] for grouping in normalized}
