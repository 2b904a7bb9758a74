"""How the web UI writes numbers, costs, changes and days: one way, on every page and chart."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime

from explorer.formats import UNPRICED, describe_cost
from explorer.report import ReportRow

_MAX_DECIMALS = 8


def usd(value: float | None, significant: int = 3) -> str:
    """Dollars at a precision that shows the figure: ``$1,234.50``, ``$0.0123``, ``$0.0000150``.

    Below a dollar, ``significant`` digits, so a small non-zero cost never reads ``$0.0000``.
    """
    if value is None:
        return UNPRICED
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    decimals = significant - 1 - math.floor(math.log10(abs(value)))
    return f"${value:,.{min(max(2, decimals), _MAX_DECIMALS)}f}"


def usd_tick(step: float) -> Callable[[float], str]:
    """Dollars for an axis whose ticks are ``step`` apart: as many decimals as the step needs."""
    decimals = min(max(2, -math.floor(math.log10(step))), _MAX_DECIMALS) if step > 0 else 2
    return lambda value: f"${value:,.{decimals}f}"


def cost(row: ReportRow) -> str:
    """A row's total: the priced cost plus what could not be priced."""
    return describe_cost(row.cost_usd, row.unpriced_calls, row.unpriced_tokens, usd)


def count(value: int | float) -> str:
    """A whole number with thousands separators."""
    return f"{value:,.0f}"


def ms(value: float | None) -> str:
    """Milliseconds to a tenth, ``-`` when there is no figure."""
    return "-" if value is None else f"{value:,.1f}"


def compact(value: float) -> str:
    """A large count in few characters for an axis: ``950``, ``12k``, ``1.5M``."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:,.3g}{suffix}"
    return f"{value:,.3g}" if value != int(value) else f"{value:,.0f}"


def percent(part: float, whole: float) -> str:
    """``part`` as a share of ``whole`` (``12.5%``); ``-`` when ``whole`` is zero."""
    return "-" if not whole else f"{100 * part / whole:.1f}%"


def change(current: float | None, previous: float | None) -> str | None:
    """The signed change from ``previous`` to ``current`` (``+12.5%``, ``-3.0%``).

    None when there is nothing to compare with (no figure, or a previous figure of zero).
    """
    if current is None or previous is None or previous == 0:
        return None
    return f"{100 * (current - previous) / previous:+.1f}%"


def day(value: date | str) -> str:
    """A day as the explorer writes every day: ``2024-10-21`` (ISO 8601, UTC)."""
    return value if isinstance(value, str) else value.isoformat()


def moment(value: datetime | str | None) -> str:
    """A point in time as every page writes it: ``2024-10-21 23:59:59`` (UTC).

    A record's own text that is not an ISO time is shown as it is.
    """
    if value is None:
        return "-"
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S")
