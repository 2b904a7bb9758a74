"""What an overview shows at a glance: charts, the previous period beside this one, the top 10.

One ``reports`` pass gives every grouping the page needs; a second, of totals only,
gives the previous period (``periods.previous_period``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from markupsafe import Markup

from explorer.index import Index
from explorer.prices import PriceTable
from explorer.report import GroupKey, ReportRow, normal_grouping, reports
from explorer.web.charts.daily import (
    calls_chart,
    cost_chart,
    group_name,
    group_value,
    latency_chart,
    tokens_chart,
)
from explorer.web.charts.marks import Chart
from explorer.web.charts.sparkline import sparkline
from explorer.web.numbers import change, count, ms, percent, usd
from explorer.web.params import ViewParams
from explorer.web.periods import days_between, previous_period, quick_ranges

TOP = 10


@dataclass(frozen=True, slots=True)
class Comparison:
    """One figure of this period beside the previous one, and the signed change."""

    name: str
    current: str
    previous: str
    change: str | None


@dataclass(frozen=True, slots=True)
class Ranked:
    """A user or model among the top by cost, with its share of the priced total."""

    key: str
    value: str | None
    row: ReportRow
    share: str
    share_ratio: float


@dataclass(frozen=True, slots=True)
class RangeLink:
    """A quick range as a link: its query string, and whether the page shows it now."""

    label: str
    query: str
    current: bool


def top_by_cost(rows: Sequence[ReportRow], key: str, limit: int = TOP) -> list[Ranked]:
    """The ``limit`` rows that cost most (then most calls), each with its share of the cost."""
    total = sum(row.cost_usd or 0.0 for row in rows)
    ranked = sorted(
        rows, key=lambda row: (-(row.cost_usd or 0.0), -row.calls, group_name(row, key))
    )
    return [
        Ranked(
            key,
            group_value(row, key),
            row,
            percent(row.cost_usd or 0.0, total),
            (row.cost_usd or 0.0) / total if total else 0.0,
        )
        for row in ranked[:limit]
    ]


def comparisons(current: ReportRow | None, previous: ReportRow | None) -> list[Comparison]:
    """Cost, calls and p95 now and in the previous period, with the change in percent."""
    figures: list[tuple[str, str, Callable[[float], str]]] = [
        ("cost", "cost_usd", usd),
        ("calls", "calls", count),
        ("latency p95", "p95_ms", lambda value: f"{ms(value)} ms"),
    ]
    compared = []
    for name, field, write in figures:
        now = getattr(current, field) if current else None
        before = getattr(previous, field) if previous else None
        compared.append(
            Comparison(
                name,
                "-" if now is None else write(now),
                "-" if before is None else write(before),
                change(now, before),
            )
        )
    return compared


def sparklines(
    days: Sequence[str], per_day_group: Sequence[ReportRow], key: str
) -> dict[str | None, Markup]:
    """A sparkline of calls per day for every user or model in ``per_day_group``."""
    rows: dict[str | None, list[ReportRow]] = defaultdict(list)
    for row in per_day_group:
        rows[group_value(row, key)].append(row)
    return {
        value: sparkline(group_name(members[0], key), days, members)
        for value, members in rows.items()
    }


def range_links(view: ViewParams, today: date) -> list[RangeLink]:
    """The quick ranges as links keeping the page's other filters."""
    return [
        RangeLink(
            choice.label,
            view.query(day_from=choice.day_from, day_to=choice.day_to, page=1),
            (choice.day_from, choice.day_to) == (view.day_from, view.day_to),
        )
        for choice in quick_ranges(today)
    ]


def overview(index: Index, prices: PriceTable, view: ViewParams, today: date) -> dict[str, Any]:
    """The template context of an overview (whole, or narrowed to a user or a model)."""
    key: GroupKey = view.by
    per_day, per_day_group, groups, users, models, total = (
        normal_grouping(keys)
        for keys in (("day",), ("day", key), (key,), ("user",), ("model",), ())
    )
    found = reports(
        index, view.selection, [per_day, per_day_group, groups, users, models, total], prices
    )
    day_from, day_to = previous_period(view.day_from, view.day_to)
    before = reports(
        index, replace(view.selection, day_from=day_from, day_to=day_to), [total], prices
    )[total]
    days = days_between(view.day_from, view.day_to)
    charts: list[Chart] = [
        cost_chart(days, found[per_day], found[per_day_group], key),
        tokens_chart(days, found[per_day]),
        calls_chart(days, found[per_day]),
        latency_chart(days, found[per_day]),
    ]
    # A total over no calls is still a row (of zeros): the page then shows its empty state.
    current = next((row for row in found[total] if row.calls), None)
    return {
        "total": current,
        "per_day": found[per_day],
        "per_day_group": found[per_day_group],
        "groups": sorted(found[groups], key=lambda row: row.calls, reverse=True),
        "max_calls": max((row.calls for row in found[per_day]), default=0),
        "charts": charts,
        "sparks": sparklines(days, found[per_day_group], key),
        "ranges": range_links(view, today),
        "previous": (day_from, day_to),
        "previous_query": view.query(day_from=day_from, day_to=day_to, page=1),
        "comparisons": comparisons(current, before[0] if before else None),
        "top_users": top_by_cost(found[users], "user"),
        "top_models": top_by_cost(found[models], "model"),
    }


def group_table(
    index: Index, prices: PriceTable, view: ViewParams, key: GroupKey
) -> dict[str, Any]:
    """The Users or Models page: a row per user or model, with its sparkline."""
    grouping, per_day = normal_grouping((key,)), normal_grouping((key, "day"))
    found = reports(index, view.selection, [grouping, per_day], prices)
    days = days_between(view.day_from, view.day_to)
    return {
        "rows": found[grouping],
        "sparks": sparklines(days, found[per_day], key),
    }
