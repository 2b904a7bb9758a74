"""``explorer report`` against a direct computation over the same files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.explorer.conftest import LONG_USER, PRICES, run_explorer
from tests.explorer.expected import expected_report, merged_prices

FIELDS = ["user_id", "model", "day", "calls", "errors", "input_tokens", "output_tokens",
          "cached_tokens", "cost_usd", "p50_ms", "p95_ms", "p99_ms", "ttfb_p50_ms",
          "unpriced_calls", "unpriced_tokens"]


def _key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (str(row["user_id"]), str(row["model"]), str(row["day"]))


def _assert_same(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert sorted(map(_key, got)) == sorted(map(_key, expected))
    by_key = {_key(row): row for row in expected}
    for row in got:
        assert list(row) == FIELDS
        want = by_key[_key(row)]
        for field in FIELDS:
            if want[field] is None or isinstance(want[field], str | int):
                assert row[field] == want[field], (field, row)
            else:
                assert row[field] == pytest.approx(want[field], abs=1e-3), (field, row)


def _env(logs: Path, prices: Path, tmp_path: Path) -> dict[str, str]:
    return {"LOCAL_LOG_DIR": str(logs), "EXPLORER_CACHE_DIR": str(tmp_path / "cache"),
            "EXPLORER_PRICES": str(prices)}


def test_report_json_equals_a_direct_computation(
    logs: Path, prices_file: Path, tmp_path: Path
) -> None:
    env = _env(logs, prices_file, tmp_path)
    result = run_explorer(
        ["report", "--from", "2024-10-21", "--to", "2024-10-22", "--format", "json"],
        env, tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    _assert_same(rows, expected_report(logs, merged_prices(PRICES)))

    by_day = {(r["user_id"], r["model"], r["day"]): r for r in rows}
    # Across UTC midnight: 23:59:59.9 and 01:30+02:00 are the 21st, 00:00:00.1 the 22nd,
    # each priced with the price of its own day.
    assert by_day[("alice", "gpt-4o-mini", "2024-10-21")]["calls"] == 2
    assert by_day[("alice", "gpt-4o-mini", "2024-10-22")]["calls"] == 1
    assert by_day[("alice", "gpt-4o-mini", "2024-10-21")]["cost_usd"] == pytest.approx(
        2 * (20 * 1.0 + 100 * 0.5 + 30 * 2.0) / 1e6)
    assert by_day[("alice", "gpt-4o-mini", "2024-10-22")]["cost_usd"] == pytest.approx(
        (20 * 2.0 + 100 * 1.0 + 30 * 4.0) / 1e6)
    # Unpriced models are null, never 0, and counted; a call without tokens costs nothing.
    local = by_day[("carol", "my-local-model", "2024-10-22")]
    assert (local["cost_usd"], local["unpriced_calls"], local["unpriced_tokens"]) == (None, 1, 10)
    embedding = by_day[("bob", "text-embedding-3-small", "2024-10-22")]
    assert embedding["input_tokens"] == 7
    assert embedding["cost_usd"] == pytest.approx(7 * 0.02 / 1e6)  # the packaged price
    assert by_day[(None, None, "2024-10-22")]["cost_usd"] == 0.0
    # A cut (long) name: the record's own user_id is what the row shows.
    assert by_day[(LONG_USER, "gpt-4o-mini", "2024-10-22")]["calls"] == 1
    # Responses API usage; ttfb only where recorded.
    bob = by_day[("bob", "gpt-4o", "2024-10-22")]
    assert (bob["input_tokens"], bob["output_tokens"], bob["cached_tokens"]) == (50, 400, 10)
    assert bob["ttfb_p50_ms"] == 95.5
    assert by_day[("carol", "gpt-4o-mini", "2024-10-22")]["errors"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("by", [("user",), ("model",), ("day",), ("user", "day")])
def test_report_groupings_and_filters(
    logs: Path, prices_file: Path, tmp_path: Path, by: tuple[str, ...]
) -> None:
    env = _env(logs, prices_file, tmp_path)
    result = run_explorer(
        ["report", "--from", "20241021", "--to", "20241022", "--by", ",".join(by),
         "--format", "json"], env, tmp_path,
    )
    assert result.returncode == 0, result.stderr
    _assert_same(json.loads(result.stdout), expected_report(logs, merged_prices(PRICES), by))


@pytest.mark.slow
def test_report_filters_by_a_cut_user_name_and_by_model(
    logs: Path, prices_file: Path, tmp_path: Path
) -> None:
    env = _env(logs, prices_file, tmp_path)
    assert any("~" in path.name for path in logs.iterdir())
    result = run_explorer(
        ["report", "--from", "2024-10-01", "--to", "2024-10-31", "--user", LONG_USER,
         "--format", "json"], env, tmp_path,
    )
    rows = json.loads(result.stdout)
    assert [(r["user_id"], r["calls"]) for r in rows] == [(LONG_USER, 1)]

    result = run_explorer(
        ["report", "--from", "2024-10-01", "--to", "2024-10-31", "--model", "gpt-4o",
         "--by", "model", "--format", "csv"], env, tmp_path,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == ",".join(FIELDS)
    assert lines[1].startswith(",gpt-4o,,1,0,50,400,10,")


@pytest.mark.slow
def test_report_table_marks_unpriced_and_bad_arguments_exit_2(
    logs: Path, prices_file: Path, tmp_path: Path
) -> None:
    env = _env(logs, prices_file, tmp_path)
    result = run_explorer(
        ["report", "--from", "2024-10-22", "--to", "2024-10-22", "--by", "model"], env, tmp_path
    )
    assert result.returncode == 0, result.stderr
    line = next(row for row in result.stdout.splitlines() if row.startswith("my-local-model"))
    assert "1 call (and 10 tokens) unpriced" in line
    bad = run_explorer(["report", "--from", "2024-10-23", "--to", "2024-10-22"], env, tmp_path)
    assert bad.returncode == 2
    bad = run_explorer(["report", "--from", "yesterday", "--to", "2024-10-22"], env, tmp_path)
    assert bad.returncode == 2 and "not a day" in bad.stderr


@pytest.mark.slow
def test_bad_configuration_exits_2_naming_the_variable_not_the_secret(tmp_path: Path) -> None:
    secret = "do-not-print-7c1e"
    result = run_explorer(
        ["report", "--from", "2024-10-21", "--to", "2024-10-22"],
        {"STORAGE_TYPE": "azure", "AZURE_STORAGE_ACCOUNT_KEY": secret}, tmp_path,
    )
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and "AZURE" in result.stderr
    assert secret not in result.stdout + result.stderr
