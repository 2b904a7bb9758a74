"""What charts are made of: the chart with its table, stacked bars, and lines with points."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from explorer.web.charts.svg import Days, Scale, number, tag, title


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart and the table under it (first column text, the others numbers)."""

    name: str
    caption: str
    svg: Markup
    head: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Segment:
    """One series' part of a day's stacked bar, and its figure as the title writes it."""

    series: str
    colour: str
    value: float
    text: str


def stacked_bars(days: Days, scale: Scale, stacks: Sequence[Sequence[Segment]]) -> list[Markup]:
    """One bar per day, its segments stacked in order from the baseline."""
    bars = []
    for position, (day, stack) in enumerate(zip(days.days, stacks, strict=True)):
        x, width = days.bar(position)
        below = 0.0
        for segment in stack:
            if segment.value <= 0:
                continue
            bars.append(
                tag(
                    "rect",
                    {
                        "class": "bar",
                        "data-day": day,
                        "data-series": segment.series,
                        "x": number(x),
                        "y": number(scale.y(below + segment.value)),
                        "width": number(width),
                        "height": number(scale.height(segment.value)),
                        "fill": segment.colour,
                    },
                    title(f"{day} · {segment.series}: {segment.text}"),
                )
            )
            below += segment.value
    return bars


def lines(
    days: Days,
    scale: Scale,
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    write: Callable[[float], str],
    axis: str = "left",
) -> list[Markup]:
    """A path per series (broken where a day has no figure) and a point with its figure."""
    drawn = []
    for name, colour, values in series:
        commands, points, pen_down = [], [], False
        for position, (day, value) in enumerate(zip(days.days, values, strict=True)):
            if value is None:
                pen_down = False
                continue
            x, y = number(days.centre(position)), number(scale.y(value))
            commands.append(f"{'L' if pen_down else 'M'}{x} {y}")
            pen_down = True
            points.append(
                tag(
                    "circle",
                    {"class": "point", "data-day": day, "cx": x, "cy": y, "r": 3, "fill": colour},
                    title(f"{day} · {name}: {write(value)}"),
                )
            )
        path = tag(
            "path",
            {
                "class": "line",
                "data-series": name,
                "data-axis": axis,
                "d": " ".join(commands),
                "fill": "none",
                "stroke": colour,
                "stroke-width": 2,
            },
        )
        drawn.append(tag("g", {"class": "series"}, path, *points))
    return drawn
