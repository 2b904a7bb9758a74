"""SVG building blocks: escaped elements, a linear scale with round ticks, axes and a legend.

Everything is drawn with presentation attributes and classes styled by the explorer's
stylesheet: no ``<style>``, no ``style=`` and no script, so the pages keep their
``default-src 'none'; style-src 'self'`` policy. Every text and attribute value passes
through ``markupsafe.escape``: user and model names are untrusted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
"""The drawing's own units; the page scales it to its width (``viewBox``, width 100%)."""
PLOT_HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 72, 64, 16, 40
LEGEND_ROW = 20
MAX_BAR = 48
LEGEND_COLUMN = 216
LEGEND_NAME_CHARS = 24

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#e15759",
    "#86bcb6",
)
"""Tableau 10: told apart by most readers, colour-blind ones included."""
OTHER = "#bab0ac"
UNPRICED_COLOUR = "#a15c00"


def number(value: float) -> str:
    """A coordinate: two decimals at most, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def tag(name: str, attributes: dict[str, object] | None = None, *children: str) -> Markup:
    """``<name ...>children</name>``: attribute values and plain-string children escaped."""
    pairs = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
        for key, value in (attributes or {}).items()
        if value is not None
    )
    return Markup(f"<{name}{pairs}>") + Markup("").join(children) + Markup(f"</{name}>")


def title(text: str) -> Markup:
    """The hover text of the element it is put in (SVG's own tooltip)."""
    return tag("title", None, text)


def ring(x: float, y: float, *children: str, **attributes: object) -> Markup:
    """The outlined circle that marks calls without a price (they have no height to draw)."""
    return tag(
        "circle",
        {
            "class": "unpriced",
            **attributes,
            "cx": number(x),
            "cy": number(y),
            "r": 5,
            "fill": "none",
            "stroke": UNPRICED_COLOUR,
            "stroke-width": 2,
        },
        *children,
    )


def nice_step(span: float, steps: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) cutting ``span`` into about ``steps``."""
    raw = span / steps
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


@dataclass(frozen=True, slots=True)
class Scale:
    """Values from 0 to ``top`` onto the plot's height, 0 at the bottom."""

    top: float
    step: float
    plot_top: float = TOP
    plot_height: float = PLOT_HEIGHT

    @classmethod
    def over(cls, highest: float, smallest_top: float = 0.0) -> Scale:
        """A scale whose top is the first round tick at or above ``highest``."""
        highest = max(highest, smallest_top)
        if highest <= 0:
            return cls(top=1.0, step=0.25)
        step = nice_step(highest)
        return cls(top=math.ceil(highest / step - 1e-9) * step, step=step)

    @property
    def baseline(self) -> float:
        return self.plot_top + self.plot_height

    def y(self, value: float) -> float:
        return self.baseline - self.plot_height * value / self.top

    def height(self, value: float) -> float:
        return self.plot_height * value / self.top

    def ticks(self) -> list[float]:
        count = round(self.top / self.step)
        return [round(self.step * n, 12) for n in range(count + 1)]


@dataclass(frozen=True, slots=True)
class Days:
    """One band of the x axis per day, in order."""

    days: Sequence[str]
    left: float = LEFT
    right: float = WIDTH - RIGHT

    @property
    def band(self) -> float:
        return (self.right - self.left) / max(len(self.days), 1)

    def start(self, position: int) -> float:
        return self.left + position * self.band

    def centre(self, position: int) -> float:
        return self.start(position) + self.band / 2

    def bar(self, position: int) -> tuple[float, float]:
        """The x and width of a bar in the band of ``position``."""
        width = min(self.band * 0.7, self.band - 2, MAX_BAR) if self.band > 2 else self.band
        return self.centre(position) - width / 2, width


def y_axis(scale: Scale, label: str, write: Callable[[float], str], right: bool = False) -> Markup:
    """Grid lines with tick labels, and the axis name with its unit, on the left or right."""
    x = WIDTH - RIGHT if right else LEFT
    parts = []
    for value in scale.ticks():
        # Each tick sits at its height; its line and label are drawn relative to it.
        grid = tag("line", {"class": "grid", "x1": LEFT, "x2": WIDTH - RIGHT, "y1": 0, "y2": 0})
        text = tag(
            "text",
            {"x": x + 6 if right else x - 6, "y": 4, "text-anchor": "start" if right else "end"},
            write(value),
        )
        parts.append(
            tag(
                "g",
                {
                    "class": "tick",
                    "data-value": repr(value),
                    "transform": f"translate(0 {number(scale.y(value))})",
                },
                Markup("") if right else grid,
                text,
            )
        )
    middle = scale.plot_top + scale.plot_height / 2
    name_x = WIDTH - 10 if right else 14
    name = tag(
        "text",
        {
            "class": "axis-name",
            "x": name_x,
            "y": number(middle),
            "text-anchor": "middle",
            "transform": f"rotate({90 if right else -90} {name_x} {number(middle)})",
        },
        label,
    )
    side = "right" if right else "left"
    return tag("g", {"class": f"y-axis {side}", "data-unit": label}, *parts, name)


def x_axis(days: Days, scale: Scale, most_labels: int = 6) -> Markup:
    """The baseline and a day label under every n-th band (at most ``most_labels``)."""
    every = max(1, math.ceil(len(days.days) / most_labels))
    labels = [
        tag(
            "text",
            {
                "x": number(days.centre(i)),
                "y": number(scale.baseline + 16),
                "text-anchor": "middle",
            },
            day,
        )
        for i, day in enumerate(days.days)
        if i % every == 0
    ]
    base = tag(
        "line",
        {
            "class": "axis",
            "x1": LEFT,
            "x2": WIDTH - RIGHT,
            "y1": number(scale.baseline),
            "y2": number(scale.baseline),
        },
    )
    name = tag(
        "text",
        {
            "class": "axis-name",
            "x": number((LEFT + WIDTH - RIGHT) / 2),
            "y": number(scale.baseline + 34),
            "text-anchor": "middle",
        },
        "day (UTC)",
    )
    return tag("g", {"class": "x-axis"}, base, *labels, name)


@dataclass(frozen=True, slots=True)
class Key:
    """One legend entry: a swatch (box, line or ring) and its name."""

    name: str
    colour: str
    shape: str = "box"


def legend(keys: Sequence[Key], top: float) -> tuple[Markup, float]:
    """The legend in rows under the plot, and the height it takes."""
    per_row = max(1, int((WIDTH - LEFT) // LEGEND_COLUMN))
    entries = []
    for i, key in enumerate(keys):
        x = LEFT + (i % per_row) * LEGEND_COLUMN
        y = top + (i // per_row) * LEGEND_ROW
        if key.shape == "line":
            swatch = tag(
                "line",
                {
                    "x1": x,
                    "x2": x + 14,
                    "y1": number(y + 6),
                    "y2": number(y + 6),
                    "stroke": key.colour,
                    "stroke-width": 2.5,
                },
            )
        elif key.shape == "ring":
            swatch = ring(x + 7, y + 6)
        else:
            swatch = tag(
                "rect", {"x": x, "y": number(y), "width": 14, "height": 12, "fill": key.colour}
            )
        shown = key.name
        if len(shown) > LEGEND_NAME_CHARS:
            shown = shown[: LEGEND_NAME_CHARS - 1] + "…"
        text = tag("text", {"x": x + 20, "y": number(y + 11)}, shown)
        entries.append(tag("g", {"class": "key"}, title(key.name), swatch, text))
    rows = math.ceil(len(keys) / per_row)
    return tag("g", {"class": "legend"}, *entries), rows * LEGEND_ROW


def figure(name: str, description: str, *parts: str, legend_keys: Sequence[Key] = ()) -> Markup:
    """The whole ``<svg>``: plot parts, then the legend under the x axis."""
    legend_top = TOP + PLOT_HEIGHT + BOTTOM + 8
    drawn, legend_height = legend(legend_keys, legend_top)
    height = legend_top + legend_height + 4
    return tag(
        "svg",
        {
            "class": "chart",
            "id": name,
            "viewBox": f"0 0 {WIDTH} {number(height)}",
            "width": "100%",
            "role": "img",
            "aria-label": description,
            "xmlns": "http://www.w3.org/2000/svg",
        },
        title(description),
        *parts,
        drawn,
    )
