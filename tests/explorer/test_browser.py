"""A real browser (Debian's chromium, driven by Playwright) against ``explorer serve``.

Chromium comes from the distribution (``scripts/ensure-tools.sh``); Playwright only
drives it, it never downloads a browser of its own.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, sync_playwright

from explorer.web.numbers import usd
from tests.explorer.conftest import (
    HOSTILE_MODEL,
    HOSTILE_USER,
    PRICES,
    SCRIPT_PROMPT,
    demo_dataset,
)
from tests.explorer.expected import expected_report, merged_prices
from tests.factories import append_records
from tests.support.ports import free_port, wait_for_port

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@contextmanager
def serving(logs: Path, prices_file: Path, tmp_path: Path) -> Iterator[str]:
    """``explorer serve`` over ``logs`` on a free port, stopped on leaving."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXPLORER_")}
    env.update(
        LOCAL_LOG_DIR=str(logs), EXPLORER_CACHE_DIR=str(tmp_path / "cache"),
        EXPLORER_PRICES=str(prices_file), EXPLORER_PORT=str(port), STORAGE_TYPE="local",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "explorer", "serve"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def server(logs: Path, prices_file: Path, tmp_path: Path) -> Iterator[str]:
    with serving(logs, prices_file, tmp_path) as base:
        yield base


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.slow
def test_overview_filter_record_and_csv_export(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)

    page.goto(f"{server}/?from=2024-10-21&to=2024-10-22")
    assert page.title() == "Overview · explorer"
    assert page.locator("#total-calls").inner_text() == "12"
    assert page.locator("#per-day tbody tr").count() == 2

    page.fill("input[name=user]", "mallory")
    page.click("#apply")
    page.wait_for_url("**user=mallory**")
    assert page.locator("#total-calls").inner_text() == "1"

    page.click("text=Requests in this view")
    rows = page.locator("#requests tbody tr")
    assert rows.count() == 1
    assert rows.locator("td.user").inner_text() == "mallory"

    with page.expect_download() as download_info:
        page.click("#export-csv")
    exported = tmp_path / "requests.csv"
    download_info.value.save_as(exported)
    with open(exported, newline="") as file:
        exported_rows = list(csv.DictReader(file))
    assert [(row["id"], row["user_id"]) for row in exported_rows] == [("xss-1", "mallory")]

    rows.locator("a.record").click()
    page.wait_for_url("**/records/xss-1")
    assert page.locator("#prompt pre.text").inner_text() == SCRIPT_PROMPT
    assert page.locator("#answer pre.text").inner_text() == "</pre><script>alert(3)</script>"
    assert page.locator("#record-user").inner_text() == "mallory"
    # Shown as text, never run: no script element, no dialog, no global set by the prompt.
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []
    context.close()


def test_a_total_with_an_unpriced_part_reads_priced_cost_plus_what_is_unpriced(
    server: str, browser: Browser, logs: Path
) -> None:
    # carol's my-local-model call (5 + 5 tokens) has no price; everything else does.
    expected = expected_report(logs, merged_prices(PRICES), by=())[0]
    assert expected["unpriced_calls"] == 1 and expected["cost_usd"] > 0
    page = browser.new_page()
    page.goto(f"{server}/?from=2024-10-21&to=2024-10-22")
    assert page.locator("#total-cost").inner_text() == (
        f"{usd(expected['cost_usd'])} + 1 call (and 10 tokens) unpriced")
    row = page.locator("#groups tbody tr", has_text="my-local-model")
    assert row.locator("td.unpriced").inner_text() == "1 call (and 10 tokens) unpriced"
    alice = page.locator("#groups tbody tr", has_text="gpt-4o-mini")
    assert "unpriced" not in alice.inner_text()

    page.goto(f"{server}/records/resp-1")
    usage = page.locator("#record-usage").inner_text()
    assert "input tokens 50" in usage and "cached tokens 10" in usage
    assert "output tokens 400" in usage
    assert page.locator("#record-cost").inner_text().startswith(
        f"${(40 * 2.5 + 10 * 2.5 + 400 * 10.0) / 1e6:,.6f}")
    assert page.locator("#record-price-source").inner_text() == "price: test: no cache price"
    page.close()


SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "explorer-overview.png"


def test_overview_with_charts_stays_on_the_explorer_and_keeps_names_as_text(
    browser: Browser, prices_file: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "demo"
    append_records(logs, demo_dataset())
    with serving(logs, prices_file, tmp_path) as base:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        outside: list[str] = []
        dialogs: list[str] = []
        page.on("console", lambda message: problems.append(message.text)
                if message.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("request", lambda request: None if request.url.startswith(base)
                else outside.append(request.url))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

        page.goto(f"{base}/?from=2024-09-23&to=2024-10-22&by=model")
        assert page.locator("svg.chart").count() == 4
        assert page.locator("#compare td.change").all_inner_texts()[1].startswith("+")
        page.screenshot(path=str(SCREENSHOT), full_page=False)

        page.goto(f"{base}/?from=2024-08-24&to=2024-10-22&by=model")
        assert page.locator("#chart-cost rect.bar").count() > 30
        # Names made of markup are drawn as text: in the legend, the titles and the tables.
        assert page.locator("#top-models tbody tr", has_text=HOSTILE_MODEL).count() == 1
        rings = page.locator("#chart-cost circle.unpriced title").all_text_contents()
        assert any(f"{HOSTILE_MODEL}: " in text for text in rings)  # a model without a price
        assert page.locator("#chart-cost img, img, script").count() == 0
        assert page.evaluate("typeof window.__pwned") == "undefined"

        page.goto(f"{base}/?from=2024-08-24&to=2024-10-22&by=user")
        assert HOSTILE_USER in page.locator("#chart-cost .legend .key title").all_text_contents()
        titles = page.locator("#chart-cost rect.bar title").all_text_contents()
        assert any(f"· {HOSTILE_USER}: $" in text for text in titles)
        assert page.locator("#top-users tbody tr", has_text=HOSTILE_USER).count() == 1
        page.goto(f"{base}/users?from=2024-08-24&to=2024-10-22")
        spark = page.locator("#groups svg.spark").first
        assert spark.locator("rect.bar").count() > 0
        # At 800 px the page still fits: the charts scale with the page, nothing overflows.
        page.set_viewport_size({"width": 800, "height": 900})
        page.goto(f"{base}/?from=2024-09-23&to=2024-10-22")
        width = page.evaluate("document.documentElement.scrollWidth")
        chart_box = page.locator("#chart-latency").bounding_box()
        assert chart_box is not None and chart_box["width"] <= 800
        page.goto(f"{base}/errors?from=2024-09-23&to=2024-10-22")
        page.locator("#errors a.requests").first.click()
        page.wait_for_url("**/requests?**")
        assert page.locator("#requests tbody tr.failed").count() > 0
        context.close()
    assert problems == [] and outside == [] and dialogs == []
    assert width <= 800
    assert SCREENSHOT.stat().st_size > 10_000
