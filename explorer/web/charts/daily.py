"""The per-day charts of an overview, drawn from report rows, each with its table of figures.

Every chart has one band per day of the range (a day without calls is an empty band,
not a missing one), axes named with their unit, a legend, a ``<title>`` with the exact
figures on every bar and point, and a ``Chart.rows`` table holding the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from explorer.formats import unpriced_part
from explorer.report import ReportRow
from explorer.web.charts.marks import Chart, Segment, lines, stacked_bars
from explorer.web.charts.svg import (
    OTHER,
    PALETTE,
    UNPRICED_COLOUR,
    Days,
    Key,
    Scale,
    figure,
    ring,
    title,
    x_axis,
    y_axis,
)
from explorer.web.numbers import compact, count, ms, percent, usd, usd_tick

STACKED_GROUPS = 9
"""Groups drawn on their own in the cost chart; the rest are summed as ``other``."""
ERROR_COLOUR = "#e15759"
RATE_COLOUR = "#1d1d1f"
TOKEN_SERIES = (
    ("input (not cached)", "#4e79a7"),
    ("cached input", "#a0cbe8"),
    ("output", "#f28e2b"),
)
LATENCY_SERIES = (
    ("p50", "p50_ms", "#4e79a7"),
    ("p95", "p95_ms", "#f28e2b"),
    ("p99", "p99_ms", "#e15759"),
    ("TTFB p50", "ttfb_p50_ms", "#59a14f"),
)


def group_value(row: ReportRow, key: str) -> str | None:
    """The user or model of ``row`` as the report has it (None: calls without one)."""
    return row.user_id if key == "user" else row.model


def group_name(row: ReportRow, key: str) -> str:
    """The user or model a row belongs to, as charts and legends name it."""
    value = group_value(row, key)
    return f"(no {key})" if value is None else value


def _by_day(rows: Sequence[ReportRow]) -> dict[str, ReportRow]:
    return {row.day: row for row in rows if row.day is not None}


def cost_chart(
    days: Sequence[str],
    per_day: Sequence[ReportRow],
    per_day_group: Sequence[ReportRow],
    key: str,
) -> Chart:
    """Priced cost per day stacked by ``key`` (user or model); a ring marks unpriced calls."""
    totals: dict[str, float] = defaultdict(float)
    cost: dict[tuple[str, str], float] = defaultdict(float)
    unpriced: dict[str, list[str]] = defaultdict(list)
    for row in per_day_group:
        name = group_name(row, key)
        totals[name] += row.cost_usd or 0.0
        if row.day is not None:
            cost[(row.day, name)] += row.cost_usd or 0.0
            if row.unpriced_calls:
                unpriced[row.day].append(f"{name}: {count(row.unpriced_calls)}")
    # A group with nothing priced has no bar to draw (its calls are ringed), nor a legend key.
    ranked = sorted((n for n in totals if totals[n] > 0), key=lambda n: (-totals[n], n))
    shown, rest = ranked[:STACKED_GROUPS], ranked[STACKED_GROUPS:]
    if len(rest) == 1:
        shown, rest = ranked, []
    other = f"other ({len(rest)} {key}s)"
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(shown)} | {other: OTHER}
    series = [*shown, other] if rest else shown

    def value(day: str, name: str) -> float:
        return sum(cost[(day, r)] for r in rest) if name == other else cost[(day, name)]

    stacks = [
        [Segment(name, colours[name], v, usd(v)) for name in series if (v := value(day, name))]
        for day in days
    ]
    day_totals = [sum(segment.value for segment in stack) for stack in stacks]
    scale = Scale.over(max(day_totals, default=0.0))
    axis = Days(days)
    rows = _by_day(per_day)
    marks = []
    for position, day in enumerate(days):
        found = rows.get(day)
        if found is None or not found.unpriced_calls:
            continue
        told = unpriced_part(found.unpriced_calls, found.unpriced_tokens)
        marks.append(
            ring(
                axis.centre(position),
                scale.y(day_totals[position]) - 8,
                title(f"{day}: {told} ({', '.join(unpriced[day])})"),
                data_day=day,
            )
        )
    keys = [Key(name, colours[name]) for name in series]
    if marks:
        keys.append(Key("unpriced calls (no cost)", UNPRICED_COLOUR, "ring"))
    svg = figure(
        "chart-cost",
        f"Cost per day in USD, stacked by {key}",
        y_axis(scale, "USD per day", usd_tick(scale.step)),
        x_axis(axis, scale),
        *stacked_bars(axis, scale, stacks),
        *marks,
        legend_keys=keys,
    )
    table = [
        (
            day,
            *(usd(value(day, name)) for name in series),
            usd(total),
            count(rows[day].unpriced_calls) if day in rows else "0",
        )
        for day, total in zip(days, day_totals, strict=True)
    ]
    head = ("day", *series, "priced total", "unpriced calls")
    return Chart("chart-cost", f"Cost per day by {key}", svg, head, table)


def tokens_chart(days: Sequence[str], per_day: Sequence[ReportRow]) -> Chart:
    """Tokens per day: input not cached, cached input and output, stacked."""
    rows = _by_day(per_day)
    figures = []
    for day in days:
        row = rows.get(day)
        cached = row.cached_tokens if row else 0
        figures.append(
            (row.input_tokens - cached if row else 0, cached, row.output_tokens if row else 0)
        )
    stacks = [
        [
            Segment(name, colour, v, f"{count(v)} tokens")
            for (name, colour), v in zip(TOKEN_SERIES, values, strict=True)
        ]
        for values in figures
    ]
    scale = Scale.over(max((sum(values) for values in figures), default=0))
    axis = Days(days)
    svg = figure(
        "chart-tokens",
        "Tokens per day: input (not cached), cached input and output",
        y_axis(scale, "tokens per day", compact),
        x_axis(axis, scale),
        *stacked_bars(axis, scale, stacks),
        legend_keys=[Key(name, colour) for name, colour in TOKEN_SERIES],
    )
    table = [
        (day, count(uncached + cached), count(cached), count(output))
        for day, (uncached, cached, output) in zip(days, figures, strict=True)
    ]
    return Chart(
        "chart-tokens",
        "Tokens per day",
        svg,
        ("day", "input tokens", "of which cached", "output tokens"),
        table,
    )


def calls_chart(days: Sequence[str], per_day: Sequence[ReportRow]) -> Chart:
    """Calls per day (successful and failed, stacked) and the error rate on a right axis."""
    rows = _by_day(per_day)
    calls = [rows[day].calls if day in rows else 0 for day in days]
    errors = [rows[day].errors if day in rows else 0 for day in days]
    rates = [100 * e / c if c else None for c, e in zip(calls, errors, strict=True)]
    stacks = [
        [
            Segment("successful", PALETTE[0], c - e, f"{count(c - e)} of {count(c)} calls"),
            Segment("errors", ERROR_COLOUR, e, f"{count(e)} of {count(c)} calls"),
        ]
        for c, e in zip(calls, errors, strict=True)
    ]
    scale = Scale.over(max(calls, default=0))
    rate_scale = Scale.over(max((r for r in rates if r is not None), default=0.0))
    axis = Days(days)
    svg = figure(
        "chart-calls",
        "Calls and errors per day, with the error rate",
        y_axis(scale, "calls per day", compact),
        y_axis(rate_scale, "error rate %", lambda v: f"{v:g}%", right=True),
        x_axis(axis, scale),
        *stacked_bars(axis, scale, stacks),
        *lines(
            axis,
            rate_scale,
            [("error rate", RATE_COLOUR, rates)],
            lambda v: f"{v:.2f}%",
            axis="right",
        ),
        legend_keys=[
            Key("successful", PALETTE[0]),
            Key("errors", ERROR_COLOUR),
            Key("error rate (right axis)", RATE_COLOUR, "line"),
        ],
    )
    table = [
        (day, count(c), count(e), percent(e, c))
        for day, c, e in zip(days, calls, errors, strict=True)
    ]
    return Chart(
        "chart-calls",
        "Calls and errors per day",
        svg,
        ("day", "calls", "errors", "error rate"),
        table,
    )


def latency_chart(days: Sequence[str], per_day: Sequence[ReportRow]) -> Chart:
    """Latency p50, p95, p99 and time to first byte p50 per day, in milliseconds."""
    rows = _by_day(per_day)
    series = [
        (name, colour, [getattr(rows[day], field) if day in rows else None for day in days])
        for name, field, colour in LATENCY_SERIES
    ]
    highest = max((v for _, _, values in series for v in values if v is not None), default=0.0)
    scale = Scale.over(highest)
    axis = Days(days)
    svg = figure(
        "chart-latency",
        "Latency per day in milliseconds: p50, p95, p99 and TTFB p50",
        y_axis(scale, "milliseconds", compact),
        x_axis(axis, scale),
        *lines(axis, scale, series, lambda v: f"{ms(v)} ms"),
        legend_keys=[Key(name, colour, "line") for name, _, colour in LATENCY_SERIES],
    )
    table = [
        (day, *(ms(values[position]) for _, _, values in series))
        for position, day in enumerate(days)
    ]
    return Chart(
        "chart-latency",
        "Latency per day",
        svg,
        ("day", "p50 ms", "p95 ms", "p99 ms", "TTFB p50 ms"),
        table,
    )
