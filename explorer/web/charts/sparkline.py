"""A sparkline per table row: that user's or model's calls per day, one tiny bar a day."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from explorer.report import ReportRow
from explorer.web.charts.svg import number, tag, title
from explorer.web.numbers import count, usd

SPARK_WIDTH, SPARK_HEIGHT = 120, 24


def sparkline(name: str, days: Sequence[str], rows: Sequence[ReportRow]) -> Markup:
    """Calls per day of ``rows`` (one group's per-day rows) on the row's own scale."""
    by_day = {row.day: row for row in rows}
    highest = max((row.calls for row in rows), default=0) or 1
    band = SPARK_WIDTH / max(len(days), 1)
    bars = []
    for position, day in enumerate(days):
        row = by_day.get(day)
        if row is None or not row.calls:
            continue
        height = SPARK_HEIGHT * row.calls / highest
        told = f"{day}: {count(row.calls)} calls, {usd(row.cost_usd)}"
        bars.append(
            tag(
                "rect",
                {
                    "class": "bar",
                    "data-day": day,
                    "x": number(position * band),
                    "y": number(SPARK_HEIGHT - height),
                    "width": number(max(band - 1, 0.5)),
                    "height": number(height),
                },
                title(told),
            )
        )
    description = f"{name}: calls per day, {days[0]} to {days[-1]}" if days else name
    return tag(
        "svg",
        {
            "class": "spark",
            "viewBox": f"0 0 {SPARK_WIDTH} {SPARK_HEIGHT}",
            "width": SPARK_WIDTH,
            "height": SPARK_HEIGHT,
            "role": "img",
            "aria-label": description,
            "xmlns": "http://www.w3.org/2000/svg",
        },
        title(description),
        *bars,
    )
