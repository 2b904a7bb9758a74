"""The price table: effective dates, overrides, unpriced models, and the packaged table."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from explorer.prices import PriceTable, PriceTableError, Tokens
from tests.explorer.conftest import PRICES


def test_prices_follow_effective_dates_and_price_cached_tokens(prices_file: Path) -> None:
    table = PriceTable.load(prices_file)
    tokens = Tokens(input=1_000_000, output=1_000_000, cached=400_000)
    assert table.cost_usd("gpt-4o-mini", date(2024, 10, 21), tokens) == pytest.approx(
        0.6 * 1.0 + 0.4 * 0.5 + 2.0)
    assert table.cost_usd("gpt-4o-mini", date(2024, 10, 22), tokens) == pytest.approx(
        0.6 * 2.0 + 0.4 * 1.0 + 4.0)
    # No cached-input price: cached tokens cost the input price.
    assert table.cost_usd("gpt-4o", date(2024, 10, 22), tokens) == pytest.approx(2.5 + 10.0)


def test_unpriced_is_none_never_zero(prices_file: Path) -> None:
    table = PriceTable.load(prices_file)
    assert table.cost_usd("my-local-model", date(2024, 10, 22), Tokens(10, 1, 0)) is None
    assert table.cost_usd(None, date(2024, 10, 22), Tokens(10, 1, 0)) is None
    assert table.cost_usd("my-local-model", date(2024, 10, 22), Tokens(0, 0, 0)) == 0.0


def test_a_dated_snapshot_takes_its_own_price_else_its_base_models(prices_file: Path) -> None:
    table = PriceTable.load(prices_file)
    day = date(2024, 10, 22)
    own = table.resolve("gpt-4o-2024-05-13", day)  # packaged: $5 / $15, not gpt-4o's
    assert own is not None and own[1] is None and (own[0].input, own[0].output) == (5.0, 15.0)
    assert table.resolve("gpt-4o-2099-01-01", day) == (table.price("gpt-4o", day), "gpt-4o")
    assert table.resolve("gpt-4-0613", day) is not None
    assert table.resolve("my-local-model-2024-01-01", day) is None


def test_the_override_replaces_a_models_packaged_entries(tmp_path: Path) -> None:
    packaged = PriceTable.load()
    assert packaged.price("gpt-4o-mini", date(2025, 1, 1)) is not None
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": [PRICES["prices"][2]]}))
    table = PriceTable.load(path)
    entry = table.price("gpt-4o", date(2025, 1, 1))
    assert entry is not None and entry.source == "test: no cache price"
    assert table.price("gpt-4o-mini", date(2025, 1, 1)) == packaged.price(
        "gpt-4o-mini", date(2025, 1, 1))


def test_every_packaged_entry_has_a_source_and_sane_dates() -> None:
    raw = json.loads((Path(__file__).parents[2] / "explorer" / "prices.json").read_text())
    assert raw["prices"]
    for entry in raw["prices"]:
        assert entry["source"].strip()
        if entry["effective_from"] and entry["effective_to"]:
            assert entry["effective_from"] < entry["effective_to"]


def test_a_broken_override_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"prices": [{"model": "x"}]}')
    with pytest.raises(PriceTableError, match="not a valid price table"):
        PriceTable.load(path)
    with pytest.raises(PriceTableError, match="cannot read"):
        PriceTable.load(tmp_path / "missing.json")
