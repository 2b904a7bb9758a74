"""The overview's charts carry the report's figures: bar heights and line points read back
through the chart's own axis equal a direct computation over the files."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from explorer.report import ReportRow
from explorer.settings import ExplorerSettings
from explorer.web.app import create_app
from explorer.web.charts.daily import cost_chart
from explorer.web.charts.sparkline import sparkline
from explorer.web.numbers import usd
from tests.explorer.conftest import LONG_USER, PRICES
from tests.explorer.expected import expected_report, merged_prices

SVG = "{http://www.w3.org/2000/svg}"
RANGE = "from=2024-10-20&to=2024-10-23"  # the data is on the 21st and 22nd only
DAYS = ["2024-10-20", "2024-10-21", "2024-10-22", "2024-10-23"]


@pytest.fixture
def client(logs: Path, prices_file: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = ExplorerSettings(
        local_log_dir=logs,
        explorer_cache_dir=tmp_path / "cache",
        explorer_prices=prices_file,
        _env_file=None,  # type: ignore[call-arg]
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _expected(logs: Path, *by: str) -> list[dict[str, Any]]:
    return expected_report(logs, merged_prices(PRICES), by=by)


def _chart(html: str, name: str) -> ET.Element:
    found = re.search(rf'<svg class="chart" id="{name}".*?</svg>', html, re.S)
    assert found, name
    return ET.fromstring(found.group(0))  # well-formed XML: every name was escaped


def _classes(element: ET.Element) -> list[str]:
    return (element.get("class") or "").split()


def _axis(svg: ET.Element, side: str = "left") -> tuple[float, Callable[[float], float]]:
    """The axis's top value and how to read a height in the drawing as a value on it."""
    axis = next(g for g in svg.iter(f"{SVG}g") if _classes(g) == ["y-axis", side])
    ticks = []
    for tick in axis.iter(f"{SVG}g"):
        if "tick" in _classes(tick):
            moved = re.fullmatch(r"translate\(0 ([-\d.]+)\)", tick.get("transform", ""))
            assert moved
            ticks.append((float(tick.get("data-value", "")), float(moved.group(1))))
    (zero, baseline), (top, top_y) = ticks[0], ticks[-1]
    assert zero == 0 and top > 0
    return top, lambda height: height * top / (baseline - top_y)


def _baseline(svg: ET.Element) -> float:
    line = next(e for e in svg.iter(f"{SVG}line") if "axis" in _classes(e))
    return float(line.get("y1", ""))


def _bars(svg: ET.Element) -> dict[tuple[str, str], float]:
    """Every bar's value read off the left axis, by day and series."""
    _, value = _axis(svg)
    bars = {}
    for rect in svg.iter(f"{SVG}rect"):
        if "bar" in _classes(rect):
            key = (rect.get("data-day", ""), rect.get("data-series", ""))
            assert key not in bars
            bars[key] = value(float(rect.get("height", "")))
    return bars


def _path_points(svg: ET.Element, series: str, side: str = "left") -> list[float]:
    """The values a line's path points at, read off its axis, in order."""
    _, value = _axis(svg, side)
    baseline = _baseline(svg)
    path = next(p for p in svg.iter(f"{SVG}path") if p.get("data-series") == series)
    points = re.findall(r"([ML])([-\d.]+) ([-\d.]+)", path.get("d", ""))
    return [value(baseline - float(y)) for _, _, y in points]


def _point_days(svg: ET.Element, series: str) -> list[str]:
    group = next(
        g for g in svg.iter(f"{SVG}g")
        if any(p.get("data-series") == series for p in g.findall(f"{SVG}path"))
    )  # fmt: skip
    return [point.get("data-day", "") for point in group.iter(f"{SVG}circle")]


def _tolerance(svg: ET.Element, side: str = "left") -> float:
    # Coordinates are written to 0.01 of a unit on a 220-unit plot.
    return _axis(svg, side)[0] * 2e-4


@pytest.mark.parametrize("key", ["model", "user"])
def test_cost_bars_stack_each_days_priced_cost_by_model_or_user(
    client: TestClient, logs: Path, key: str
) -> None:
    html = client.get(f"/?{RANGE}&by={key}").text
    svg = _chart(html, "chart-cost")
    field = "model" if key == "model" else "user_id"
    expected = {
        (row["day"], row[field] if row[field] is not None else f"(no {key})"): row["cost_usd"]
        for row in _expected(logs, key, "day")
        if row["cost_usd"]
    }
    bars = _bars(svg)
    assert set(bars) == set(expected)
    for bar, cost in expected.items():
        assert bars[bar] == pytest.approx(cost, abs=_tolerance(svg)), bar
    if key == "user":
        assert ("2024-10-22", LONG_USER) in bars
    # The day's stack reaches its priced total.
    day_total = sum(cost for (day, _), cost in expected.items() if day == "2024-10-22")
    table = re.search(r'id="chart-cost-table">.*?</table>', html, re.S)
    assert table and "<th scope=\"row\">2024-10-22</th>" in table.group(0)
    assert f'<td class="n">{usd(day_total)}</td>' in table.group(0)


def test_cost_chart_marks_the_days_with_unpriced_calls(client: TestClient, logs: Path) -> None:
    svg = _chart(client.get(f"/?{RANGE}&by=model").text, "chart-cost")
    rings = {
        circle.get("data-day"): circle.findtext(f"{SVG}title")
        for circle in svg.iter(f"{SVG}circle")
        if "unpriced" in _classes(circle) and circle.get("data-day")
    }
    unpriced = {row["day"]: row for row in _expected(logs, "day") if row["unpriced_calls"]}
    assert set(rings) == set(unpriced) == {"2024-10-22"}
    assert rings["2024-10-22"] == (
        "2024-10-22: 1 call (and 10 tokens) unpriced (my-local-model: 1)"
    )
    legend = [key.findtext(f"{SVG}title") for key in svg.iter(f"{SVG}g") if "key" in _classes(key)]
    assert "unpriced calls (no cost)" in legend


def test_token_bars_are_input_cached_and_output_per_day(client: TestClient, logs: Path) -> None:
    svg = _chart(client.get(f"/?{RANGE}").text, "chart-tokens")
    bars = _bars(svg)
    expected = {}
    for row in _expected(logs, "day"):
        expected[(row["day"], "input (not cached)")] = row["input_tokens"] - row["cached_tokens"]
        expected[(row["day"], "cached input")] = row["cached_tokens"]
        expected[(row["day"], "output")] = row["output_tokens"]
    assert set(bars) == {bar for bar, tokens in expected.items() if tokens}
    for bar, tokens in expected.items():
        assert bars.get(bar, 0) == pytest.approx(tokens, abs=_tolerance(svg)), bar


def test_calls_bars_and_the_error_rate_line(client: TestClient, logs: Path) -> None:
    svg = _chart(client.get(f"/?{RANGE}").text, "chart-calls")
    rows = sorted(_expected(logs, "day"), key=lambda row: row["day"])
    bars = _bars(svg)
    for row in rows:
        ok = bars.get((row["day"], "successful"), 0)
        assert ok == pytest.approx(row["calls"] - row["errors"], abs=_tolerance(svg))
        assert bars.get((row["day"], "errors"), 0) == pytest.approx(
            row["errors"], abs=_tolerance(svg)
        )
    # The rate's points: only the days with calls, on the right axis, in percent.
    assert _point_days(svg, "error rate") == [row["day"] for row in rows]
    rates = _path_points(svg, "error rate", side="right")
    assert rates == pytest.approx(
        [100 * row["errors"] / row["calls"] for row in rows], abs=_tolerance(svg, "right")
    )


@pytest.mark.parametrize(
    ("series", "field"),
    [("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"), ("TTFB p50", "ttfb_p50_ms")],
)
def test_latency_lines_are_the_percentiles_per_day(
    client: TestClient, logs: Path, series: str, field: str
) -> None:
    svg = _chart(client.get(f"/?{RANGE}").text, "chart-latency")
    rows = sorted(
        (row for row in _expected(logs, "day") if row[field] is not None),
        key=lambda row: row["day"],
    )
    assert _point_days(svg, series) == [row["day"] for row in rows]
    assert _path_points(svg, series) == pytest.approx(
        [row[field] for row in rows], abs=_tolerance(svg)
    )


def test_a_narrowed_page_draws_only_its_calls(client: TestClient, logs: Path) -> None:
    svg = _chart(client.get(f"/users/carol?{RANGE}").text, "chart-calls")
    bars = _bars(svg)
    carol = [row for row in _expected(logs, "user", "day") if row["user_id"] == "carol"]
    assert [row["day"] for row in carol] == ["2024-10-22"]
    assert bars[("2024-10-22", "errors")] == pytest.approx(carol[0]["errors"], abs=1e-3)
    assert bars[("2024-10-22", "successful")] == pytest.approx(
        carol[0]["calls"] - carol[0]["errors"], abs=1e-3
    )


def test_every_users_sparkline_is_its_calls_per_day(client: TestClient, logs: Path) -> None:
    html = client.get(f"/users?{RANGE}").text
    sparks = {}
    for found in re.finditer(r'<svg class="spark".*?</svg>', html, re.S):
        svg = ET.fromstring(found.group(0))
        name = svg.get("aria-label", "").rsplit(": calls per day", 1)[0]
        sparks[name] = {
            rect.get("data-day"): float(rect.get("height", "")) / 24
            for rect in svg.iter(f"{SVG}rect")
        }
    calls: dict[str, dict[str, int]] = {}
    for row in _expected(logs, "user", "day"):
        name = row["user_id"] if row["user_id"] is not None else "(no user)"
        calls.setdefault(name, {})[row["day"]] = row["calls"]
    assert set(sparks) == set(calls)
    for name, per_day in calls.items():
        highest = max(per_day.values())
        assert sparks[name] == pytest.approx(
            {day: n / highest for day, n in per_day.items()}, abs=1e-3
        ), name


def test_names_made_of_markup_stay_text_in_every_chart_part() -> None:
    name = '<script>alert(1)</script>"&'
    row = ReportRow(name, name, "2024-10-21", 3, 1, 30, 20, 10, 0.25, 100.0, 200.0, 300.0, 50.0,
                    unpriced_calls=1, unpriced_tokens=5)  # fmt: skip
    drawn = [cost_chart(["2024-10-21"], [row], [row], key).svg for key in ("user", "model")]
    drawn.append(sparkline(name, ["2024-10-21"], [row]))
    for svg in drawn:
        assert "<script" not in svg
        texts = [element.text for element in ET.fromstring(svg).iter() if element.text]
        assert any(name in text for text in texts)
