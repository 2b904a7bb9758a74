"""Usage per user, model and day: calls, errors, tokens, cost and latency percentiles.

Counts and percentiles come from the ``calls`` table; cost is computed here, at query
time, per model and day (prices change over time) and summed into each row. A row whose
calls used tokens of an unpriced model has no cost (``None``), never a partial sum.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def report(
    index: Index,
    selection: Selection,
    by: Sequence[GroupKey] = GROUP_KEYS,
    prices: PriceTable | None = None,
    progress: Progress | None = None,
) -> list[ReportRow]:
    """The rows for ``selection`` grouped by ``by`` (no key: one total row)."""
    prices = prices or PriceTable.load()
    index.sync(selection, progress)
    keys = [_COLUMN[key] for key in GROUP_KEYS if key in by]
    where, params = where_clause(selection)
    # Aliases differ from the column names so that GROUP BY always means the columns.
    picked = ", ".join(
        f"{_COLUMN[key] if key in by else 'NULL'} AS group_{key}" for key in GROUP_KEYS
    )
    group = f"GROUP BY {', '.join(keys)}" if keys else ""
    order = f"ORDER BY {', '.join(k + ' NULLS FIRST' for k in reversed(keys))}" if keys else ""
    with index.connection() as con:
        totals = con.execute(
            f"""
            SELECT {picked}, count(*), count(*) FILTER (WHERE is_error),
                   sum(input_tokens), sum(output_tokens), sum(cached_tokens),
                   quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.95),
                   quantile_cont(duration_ms, 0.99), quantile_cont(ttfb_ms, 0.5)
            FROM calls WHERE {where} {group} {order}
            """,
            params,
        ).fetchall()
        priced_keys = ", ".join(dict.fromkeys([*keys, "model", "day"]))
        by_price = con.execute(
            f"""
            SELECT {picked}, model AS priced_model, day AS priced_day,
                   sum(input_tokens), sum(output_tokens), sum(cached_tokens)
            FROM calls WHERE {where} GROUP BY {priced_keys}
            """,
            params,
        ).fetchall()
    cost: dict[tuple[Any, ...], float | None] = {}
    for user_id, model, day, priced_model, priced_day, tokens_in, tokens_out, cached in by_price:
        key = (user_id, model, day)
        part = prices.cost_usd(priced_model, priced_day, Tokens(tokens_in, tokens_out, cached))
        previous = cost.get(key, 0.0)
        cost[key] = None if part is None or previous is None else previous + part
    rows = []
    for user_id, model, day, calls, errors, t_in, t_out, t_cached, p50, p95, p99, ttfb in totals:
        rows.append(
            ReportRow(
                user_id=user_id,
                model=model,
                day=day.isoformat() if isinstance(day, date) else None,
                calls=calls,
                errors=errors,
                input_tokens=int(t_in or 0),
                output_tokens=int(t_out or 0),
                cached_tokens=int(t_cached or 0),
                cost_usd=cost.get((user_id, model, day), 0.0),
                p50_ms=_round(p50),
                p95_ms=_round(p95),
                p99_ms=_round(p99),
                ttfb_p50_ms=_round(ttfb),
            )
        )
    return rows
