"""Quick ranges (today, 7 days, 30 days, this month, last month) and the period before a range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class QuickRange:
    """A named range of whole UTC days, both ends included."""

    label: str
    day_from: date
    day_to: date


def _month_end(day: date) -> date:
    next_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


def quick_ranges(today: date) -> list[QuickRange]:
    """The ranges offered above every overview, ending today (UTC) except last month."""
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return [
        QuickRange("today", today, today),
        QuickRange("7 days", today - timedelta(days=6), today),
        QuickRange("30 days", today - timedelta(days=29), today),
        QuickRange("this month", first, today),
        QuickRange("last month", last_month_end.replace(day=1), last_month_end),
    ]


def previous_period(day_from: date, day_to: date) -> tuple[date, date]:
    """The period a range is compared with.

    A range within one calendar month that starts on the 1st is compared with the same
    days of the month before (a whole month with the whole month before); any other
    range with as many days just before it.
    """
    if day_from.day == 1 and (day_from.year, day_from.month) == (day_to.year, day_to.month):
        before_end = day_from - timedelta(days=1)
        before_start = before_end.replace(day=1)
        if day_to == _month_end(day_to):
            return before_start, before_end
        return before_start, before_start.replace(day=min(day_to.day, before_end.day))
    length = day_to - day_from
    before_end = day_from - timedelta(days=1)
    return before_end - length, before_end


def days_between(day_from: date, day_to: date) -> list[str]:
    """Every day from ``day_from`` to ``day_to``, both included, as ISO dates."""
    return [
        (day_from + timedelta(days=offset)).isoformat()
        for offset in range((day_to - day_from).days + 1)
    ]
