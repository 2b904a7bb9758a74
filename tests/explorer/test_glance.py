"""Ranges, the previous period, the top 10, the errors view, the empty state, the numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from explorer.settings import ExplorerSettings
from explorer.web.app import create_app
from explorer.web.numbers import change, moment, usd
from explorer.web.periods import previous_period, quick_ranges
from tests.explorer.conftest import PRICES
from tests.explorer.expected import expected_report, merged_prices, read_records

DAYS = "from=2024-10-21&to=2024-10-22"


def _client(logs: Path, prices_file: Path, tmp_path: Path) -> TestClient:
    settings = ExplorerSettings(
        local_log_dir=logs,
        explorer_cache_dir=tmp_path / "cache",
        explorer_prices=prices_file,
        _env_file=None,  # type: ignore[call-arg]
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(logs: Path, prices_file: Path, tmp_path: Path) -> Iterator[TestClient]:
    with _client(logs, prices_file, tmp_path) as client:
        yield client


def _cells(html: str, table: str) -> list[list[str]]:
    body = re.search(rf'id="{table}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, table
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>",
                                                                       row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]  # fmt: skip


def test_costs_read_at_a_precision_that_shows_them() -> None:
    assert usd(0.000015) == "$0.0000150"  # never $0.0000
    assert usd(0.0123) == "$0.0123"
    assert usd(1234.5) == "$1,234.50"
    assert usd(0) == "$0.00"
    assert usd(None) == "unpriced"
    assert change(120, 100) == "+20.0%" and change(90, 100) == "-10.0%"
    assert change(5, 0) is None and change(None, 3) is None
    assert moment("2024-10-22T01:30:00+02:00") == "2024-10-21 23:30:00"  # every time in UTC


def test_quick_ranges_and_the_period_each_is_compared_with() -> None:
    ranges = {r.label: (r.day_from, r.day_to) for r in quick_ranges(date(2024, 3, 15))}
    assert ranges == {
        "today": (date(2024, 3, 15), date(2024, 3, 15)),
        "7 days": (date(2024, 3, 9), date(2024, 3, 15)),
        "30 days": (date(2024, 2, 15), date(2024, 3, 15)),
        "this month": (date(2024, 3, 1), date(2024, 3, 15)),
        "last month": (date(2024, 2, 1), date(2024, 2, 29)),
    }
    assert previous_period(date(2024, 3, 9), date(2024, 3, 15)) == (
        date(2024, 3, 2), date(2024, 3, 8))  # fmt: skip
    # A month with the month before; a month to date with the same days of the month before.
    assert previous_period(date(2024, 2, 1), date(2024, 2, 29)) == (
        date(2024, 1, 1), date(2024, 1, 31))  # fmt: skip
    assert previous_period(date(2024, 3, 1), date(2024, 3, 31)) == (
        date(2024, 2, 1), date(2024, 2, 29))  # fmt: skip
    assert previous_period(date(2024, 3, 1), date(2024, 3, 30)) == (
        date(2024, 2, 1), date(2024, 2, 29))  # fmt: skip


def test_the_previous_period_beside_this_one_with_the_signed_change(
    client: TestClient, logs: Path
) -> None:
    rows = {row["day"]: row for row in expected_report(logs, merged_prices(PRICES), by=("day",))}
    now, before = rows["2024-10-22"], rows["2024-10-21"]
    html = client.get("/?from=2024-10-22&to=2024-10-22").text
    figures = {row[0]: row[1:] for row in _cells(html, "compare")}
    assert figures["calls"] == [str(now["calls"]), str(before["calls"]),
                                f"{100 * (now['calls'] - before['calls']) / before['calls']:+.1f}%"]
    assert figures["cost"][:2] == [usd(now["cost_usd"]), usd(before["cost_usd"])]
    cost_change = 100 * (now["cost_usd"] - before["cost_usd"]) / before["cost_usd"]
    assert figures["cost"][2] == f"{cost_change:+.1f}%"
    p95_change = 100 * (now["p95_ms"] - before["p95_ms"]) / before["p95_ms"]
    assert figures["latency p95"][2] == f"{p95_change:+.1f}%"
    # The quick ranges keep the other filters and mark the range shown.
    html = client.get("/?user=carol&by=user").text
    assert re.search(r'<a href="\?[^"]*user=carol[^"]*" class="current"[^>]*>30 days</a>', html)


def test_top_users_and_models_by_cost_with_their_share(client: TestClient, logs: Path) -> None:
    html = client.get(f"/?{DAYS}").text
    prices = merged_prices(PRICES)
    for key, field in (("users", "user_id"), ("models", "model")):
        expected = expected_report(logs, prices, by=(field.removesuffix("_id"),))
        total = sum(row["cost_usd"] or 0 for row in expected)
        ranked = sorted(expected, key=lambda row: (-(row["cost_usd"] or 0), -row["calls"]))[:10]
        cells = _cells(html, f"top-{key}")
        assert len(cells) == len(ranked)
        for got, row in zip(cells, ranked, strict=True):
            assert got[2] == f"{100 * (row['cost_usd'] or 0) / total:.1f}%", got
        assert cells[0][1] == usd(ranked[0]["cost_usd"])


def test_errors_grouped_by_model_status_and_type_link_to_their_requests(
    client: TestClient, logs: Path
) -> None:
    html = client.get(f"/errors?{DAYS}").text
    failed = []
    for record in read_records(logs):
        status = (record.get("response") or {}).get("status_code")
        if record.get("error") or status is None or status >= 400:
            failed.append(record)
    cells = _cells(html, "errors")
    assert [(row[0], row[1], row[2], row[3]) for row in cells] == [
        ("gpt-4o-mini", "500", "server_error", "1"),
        ("gpt-4o-mini", "502", "http_502", "1"),
        ("gpt-4o-mini", "none", "upstream_timeout", "1"),
    ]
    assert len(failed) == 3
    assert cells[0][5] == "2024-10-22 11:00:00" and cells[2][6] == "2024-10-22 11:05:00"
    for link, row in zip(re.findall(r'class="requests" href="([^"]+)"', html), cells, strict=True):
        requests = client.get(unquote(link).replace("&amp;", "&")).text
        assert requests.count('class="record"') == int(row[3]), link


def test_an_empty_store_says_what_to_do(logs: Path, prices_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with _client(empty, prices_file, tmp_path) as client:
        for page in ("/", "/users", "/models"):
            html = client.get(page).text
            assert 'id="empty-state"' in html and "No log files yet" in html, page
            assert "LOCAL_LOG_DIR" in html
    with _client(logs, prices_file, tmp_path) as client:  # files, none in the range
        html = client.get("/?from=2030-01-01&to=2030-01-02").text
        assert 'id="empty-range"' in html
