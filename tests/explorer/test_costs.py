"""Costs of every priced unit, dated snapshots, unpriced models and malformed usage.

Each record is written to a real log folder; ``explorer report`` must equal the direct
computation of ``tests/explorer/expected.py`` over the same files and the same prices.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.record import Record, RequestPart, ResponsePart
from tests.explorer.conftest import at, run_explorer
from tests.explorer.expected import expected_report, merged_prices
from tests.factories import append_records

DAY = "2025-03-04"
OVERRIDE = {
    "prices": [
        {"model": "dall-e-3", "per_image": {"hd/1024x1792": 0.12, "standard/1024x1024": 0.04},
         "source": "test: per image"},
    ]
}


def _call(record_id: str, model: str, path: str, response_body: Any, *, user: str = "ann",
          request_body: dict[str, Any] | None = None, status: int = 200) -> Record:
    return Record(
        id=record_id, timestamp=at(f"{DAY}T10:00:00+00:00"), user_id=user, model=model,
        duration_ms=10.0,
        request=RequestPart(method="POST", path=path, body=request_body or {"model": model}),
        response=ResponsePart(status_code=status, body=response_body),
    )


def _chat(record_id: str, model: str, usage: Any, **body: Any) -> Record:
    return _call(record_id, model, "/v1/chat/completions", {"model": model, "usage": usage} | body)


def units_dataset() -> list[Record]:
    """One record per unit and case; the comments say what each one checks."""
    return [
        # Text tokens with cached and reasoning tokens; a snapshot with a price of its own.
        _chat("own-snapshot", "gpt-4o-2024-08-06", {
            "prompt_tokens": 1000, "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 400},
            "completion_tokens_details": {"reasoning_tokens": 200}}),
        # A snapshot the table does not name: priced as its base model.
        _chat("base-snapshot", "gpt-4o-2099-01-01", {"prompt_tokens": 100,
                                                     "completion_tokens": 10}),
        # An Azure deployment's own name has no price: the served model's is used.
        _call("azure-deployment", "my-gpt4o", "/openai/deployments/my-gpt4o/chat/completions",
              {"model": "gpt-4o-2024-08-06",
               "usage": {"prompt_tokens": 100, "completion_tokens": 10}}),
        # Service tiers: flex and priority have their own prices; gpt-4o has no flex price.
        _chat("flex", "o3", {"prompt_tokens": 1000, "completion_tokens": 100},
              service_tier="flex"),
        _chat("priority", "o3", {"prompt_tokens": 1000, "completion_tokens": 100},
              service_tier="priority"),
        _chat("default-tier", "o3", {"prompt_tokens": 1000, "completion_tokens": 100},
              service_tier="default"),
        _chat("no-flex-price", "gpt-4o", {"prompt_tokens": 100, "completion_tokens": 10},
              service_tier="flex"),
        # Audio tokens in chat (gpt-4o-audio) and Realtime (with cached audio).
        _chat("audio-chat", "gpt-4o-audio-preview-2024-12-17", {
            "prompt_tokens": 300, "completion_tokens": 200,
            "prompt_tokens_details": {"audio_tokens": 250, "cached_tokens": 0},
            "completion_tokens_details": {"audio_tokens": 150}}),
        _call("realtime", "gpt-realtime", "/v1/realtime", {"usage": {
            "total_tokens": 1700, "input_tokens": 1200, "output_tokens": 500,
            "input_token_details": {"text_tokens": 200, "audio_tokens": 1000,
                                    "cached_tokens": 600,
                                    "cached_tokens_details": {"text_tokens": 100,
                                                              "audio_tokens": 500}},
            "output_token_details": {"text_tokens": 100, "audio_tokens": 400}}}),
        # Transcription: per minute (whisper, either shape) and by tokens (gpt-4o-transcribe).
        _call("whisper-usage", "whisper-1", "/v1/audio/transcriptions",
              {"text": "hi", "usage": {"type": "duration", "seconds": 90}}),
        _call("whisper-verbose", "whisper-1", "/v1/audio/transcriptions",
              {"text": "hi", "duration": 30.5}),
        _call("transcribe-tokens", "gpt-4o-transcribe", "/v1/audio/transcriptions", {
            "text": "hi", "usage": {"type": "tokens", "input_tokens": 120, "output_tokens": 30,
                                    "input_token_details": {"audio_tokens": 100,
                                                            "text_tokens": 20}}}),
        # Speech: characters of the request's input; gpt-4o-mini-tts has no character price.
        _call("speech", "tts-1", "/v1/audio/speech",
              {"size_bytes": 4096, "content_type": "audio/mpeg"},
              request_body={"model": "tts-1", "input": "Héllo, world!", "voice": "alloy"}),
        _call("speech-unpriced", "gpt-4o-mini-tts", "/v1/audio/speech",
              {"size_bytes": 4096, "content_type": "audio/mpeg"},
              request_body={"model": "gpt-4o-mini-tts", "input": "Hi", "voice": "alloy"}),
        # Images: per image by size and quality; token-billed gpt-image-1; an unpriced size.
        _call("images-hd", "dall-e-3", "/v1/images/generations",
              {"data": [{"url": "a"}, {"url": "b"}]},
              request_body={"model": "dall-e-3", "size": "1024x1792", "quality": "hd", "n": 2}),
        _call("images-default", "dall-e-3", "/v1/images/generations", {"data": [{"url": "a"}]},
              request_body={"model": "dall-e-3", "prompt": "a cat"}),
        _call("images-unpriced-size", "dall-e-3", "/v1/images/generations",
              {"data": [{"url": "a"}]},
              request_body={"model": "dall-e-3", "size": "512x512", "quality": "standard"}),
        _call("image-tokens", "gpt-image-1", "/v1/images/generations", {
            "data": [{"b64_json": "..."}], "usage": {
                "input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
                "input_tokens_details": {"text_tokens": 40, "image_tokens": 10}}},
              request_body={"model": "gpt-image-1", "size": "1024x1024", "quality": "high"}),
        # Embeddings (a tiny cost: CSV must print it without an exponent).
        _call("embedding", "text-embedding-3-large", "/v1/embeddings",
              {"data": [], "usage": {"prompt_tokens": 7, "total_tokens": 7}}),
        # An unpriced model beside priced ones.
        _chat("unknown-model", "my-model", {"prompt_tokens": 40, "completion_tokens": 2}),
        # Malformed usage: counted, unpriced, never a crash.
        _chat("bad-string", "gpt-4o", {"prompt_tokens": "12", "completion_tokens": 3}),
        _chat("bad-negative", "gpt-4o", {"prompt_tokens": -5, "completion_tokens": 3}),
        _chat("bad-list", "gpt-4o", [1, 2]),
        _chat("bad-float", "gpt-4o", {"prompt_tokens": 1e30, "completion_tokens": 3}),
        _chat("bad-int64", "gpt-4o", {"prompt_tokens": 2**63, "completion_tokens": 3}),
        _chat("bad-detail", "gpt-4o", {"prompt_tokens": 5, "completion_tokens": 3,
                                       "prompt_tokens_details": {"cached_tokens": 1.5}}),
        # A failed call costs nothing.
        _call("failed", "gpt-4o", "/v1/chat/completions", {"error": {"type": "server_error"}},
              status=500),
    ]


@pytest.fixture
def unit_logs(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    logs = tmp_path / "units"
    records = units_dataset()
    # The user "bob" gets the same calls (new ids): totals over users add up.
    append_records(logs, records + [r.model_copy(update={"id": r.id + "-b", "user_id": "bob"})
                                    for r in records])
    prices = tmp_path / "override.json"
    prices.write_text(json.dumps(OVERRIDE))
    env = {"LOCAL_LOG_DIR": str(logs), "EXPLORER_CACHE_DIR": str(tmp_path / "cache"),
           "EXPLORER_PRICES": str(prices)}
    return logs, env


def _report(env: dict[str, str], cwd: Path, *args: str) -> list[dict[str, Any]]:
    result = run_explorer(["report", "--from", DAY, "--to", DAY, "--format", "json", *args],
                          env, cwd)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def _same(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    def key(row: dict[str, Any]) -> tuple[str, str, str]:
        return str(row["user_id"]), str(row["model"]), str(row["day"])

    want = {key(row): row for row in expected}
    assert sorted(map(key, got)) == sorted(want)
    for row in got:
        expected_row = want[key(row)]
        for field in ("calls", "input_tokens", "output_tokens", "cached_tokens",
                      "unpriced_calls", "unpriced_tokens"):
            assert row[field] == expected_row[field], (field, row)
        if expected_row["cost_usd"] is None:
            assert row["cost_usd"] is None, row
        else:
            assert row["cost_usd"] == pytest.approx(expected_row["cost_usd"], rel=1e-9), row


def test_report_costs_equal_a_direct_computation_for_every_unit(
    unit_logs: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    logs, env = unit_logs
    prices = merged_prices(OVERRIDE)
    for by in ("user,model,day", "model", "user", "day"):
        keys = tuple(by.split(","))
        _same(_report(env, tmp_path, "--by", by), expected_report(logs, prices, keys))

    rows = {row["model"]: row for row in _report(env, tmp_path, "--by", "model")}
    # Hand-checked against the packaged table, for both users.
    assert rows["whisper-1"]["cost_usd"] == pytest.approx(2 * (90 + 30.5) / 60 * 0.006)
    assert rows["tts-1"]["cost_usd"] == pytest.approx(2 * len("Héllo, world!") * 15 / 1e6)
    assert rows["o3"]["cost_usd"] == pytest.approx(
        2 * (1000 * (1.0 + 3.5 + 2.0) + 100 * (4.0 + 14.0 + 8.0)) / 1e6)
    assert rows["gpt-4o-2099-01-01"]["cost_usd"] == pytest.approx(2 * (100 * 2.5 + 10 * 10) / 1e6)
    assert rows["my-gpt4o"]["cost_usd"] == pytest.approx(2 * (100 * 2.5 + 10 * 10) / 1e6)
    assert rows["gpt-realtime"]["cost_usd"] == pytest.approx(2 * (
        100 * 4 + 100 * 0.4 + 500 * 32 + 500 * 0.4 + 100 * 16 + 400 * 64) / 1e6)
    # dall-e-3: 2 hd 1024x1792 and 1 default (standard 1024x1024) priced; 512x512 is not.
    dalle = rows["dall-e-3"]
    assert dalle["cost_usd"] == pytest.approx(2 * (2 * 0.12 + 0.04))
    assert (dalle["unpriced_calls"], dalle["unpriced_tokens"]) == (2, 0)
    # gpt-4o: the flex call (no flex price) and the six malformed ones are unpriced.
    gpt4o = rows["gpt-4o"]
    assert gpt4o["cost_usd"] is None and gpt4o["unpriced_calls"] == 2 * 7
    assert gpt4o["calls"] == 2 * 8 and gpt4o["errors"] == 2
    assert rows["my-model"]["cost_usd"] is None and rows["my-model"]["unpriced_tokens"] == 84

    # The total row keeps the priced part and says what is unpriced.
    total = run_explorer(["report", "--from", DAY, "--to", DAY, "--by", ""], env, tmp_path)
    assert total.returncode == 0, total.stderr
    assert "+ 20 calls (and 304 tokens) unpriced" in total.stdout


def test_csv_prints_no_exponent(unit_logs: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = unit_logs
    result = run_explorer(["report", "--from", DAY, "--to", DAY, "--by", "model", "--format",
                           "csv"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    embedding = next(line for line in result.stdout.splitlines()
                     if line.startswith(",text-embedding-3-large,"))
    assert ",0.00000182" in embedding  # 2 x 7 tokens at $0.13 per 1M
    assert re.search(r"\d[eE][-+]?\d", result.stdout) is None


def test_prices_check_lists_every_model_and_unit_without_a_price(
    unit_logs: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = unit_logs
    result = run_explorer(["prices", "check", "--from", DAY, "--to", DAY], env, tmp_path)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "gpt-4o-2099-01-01: priced as gpt-4o (no price of its own)" in out
    assert "my-gpt4o: priced as gpt-4o-2024-08-06" in out
    lines = out.splitlines()

    def line(model: str, unit: str) -> str:
        return next(text for text in lines if text.startswith(model + " ") and unit in text)

    assert "no price for this model" in line("my-model", "input tokens")
    assert line("gpt-4o-mini-tts", "characters")
    assert line("dall-e-3", "images standard/512x512")
    assert line("gpt-4o", "input tokens (flex tier)")
    malformed = [text for text in lines if "malformed usage" in text]
    assert any("input_tokens is varchar" in text for text in malformed)
    assert any("input_tokens is negative" in text for text in malformed)
    assert any("usage is array" in text for text in malformed)
    assert any("input_tokens is double" in text for text in malformed)
    assert any("input_tokens is beyond int64" in text for text in malformed)
    assert any("cached_tokens is double" in text for text in malformed)
    assert "o3 " not in out and "whisper-1 " not in out

    clean = run_explorer(["prices", "check", "--from", "2025-03-05", "--to", "2025-03-05"],
                         env, tmp_path)
    assert clean.returncode == 0 and "has a price" in clean.stdout


def test_report_defaults_to_today_and_takes_relative_days(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    now = datetime.now(UTC)
    append_records(logs, [_chat("today", "gpt-4o", {"prompt_tokens": 1, "completion_tokens": 1})
                          .model_copy(update={"timestamp": now})])
    env = {"LOCAL_LOG_DIR": str(logs), "EXPLORER_CACHE_DIR": str(tmp_path / "cache")}
    for args in ([], ["--from", "today"], ["--from", "7d"], ["--from", "1d", "--to", "today"]):
        result = run_explorer(["report", "--format", "json", *args], env, tmp_path)
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        assert [(r["day"], r["calls"]) for r in rows] == [(now.date().isoformat(), 1)], args
