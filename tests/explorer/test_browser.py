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
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, sync_playwright

from tests.explorer.conftest import PRICES, SCRIPT_PROMPT
from tests.explorer.expected import expected_report, merged_prices
from tests.support.ports import free_port, wait_for_port

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def server(logs: Path, prices_file: Path, tmp_path: Path) -> Iterator[str]:
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
        f"${expected['cost_usd']:,.4f} + 1 call (and 10 tokens) unpriced")
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
