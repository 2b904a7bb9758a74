"""``explorer reconcile`` against a fake of OpenAI's Usage and Costs APIs built from the spec.

The fake pages every two days and can throttle; differences are planted on purpose:
traffic that bypassed the proxy, a model the files never saw, a cost that disagrees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from explorer.settings import ExplorerSettings
from explorer.web.app import create_app
from shared.record import Record, RequestPart, ResponsePart
from tests.explorer.conftest import at, run_explorer
from tests.factories import append_records
from tests.support.fake_usage_api import (
    ADMIN_KEY,
    PROJECT_KEY,
    FakeUsageApi,
    serve_fake_usage_api,
)

DAY1, DAY2, DAY3 = date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 6)
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100,
         "prompt_tokens_details": {"cached_tokens": 200}}
CHAT_USD = (800 * 2.5 + 200 * 1.25 + 100 * 10) / 1e6  # gpt-4o-2024-08-06, packaged price


def _chat(number: int, day: date) -> Record:
    return Record(
        id=f"chat-{day}-{number}", timestamp=at(f"{day}T09:00:00+00:00"), user_id="ann",
        model="gpt-4o", duration_ms=10.0,
        request=RequestPart(method="POST", path="/v1/chat/completions", body={"model": "gpt-4o"}),
        # The response names the snapshot that served the call, as OpenAI's usage does.
        response=ResponsePart(status_code=200, body={"model": "gpt-4o-2024-08-06",
                                                     "usage": USAGE}),
    )


def _embedding(day: date) -> Record:
    return Record(
        id=f"emb-{day}", timestamp=at(f"{day}T10:00:00+00:00"), user_id="ann",
        model="text-embedding-3-small", duration_ms=5.0,
        request=RequestPart(method="POST", path="/v1/embeddings", body={}),
        response=ResponsePart(status_code=200, body={
            "model": "text-embedding-3-small", "usage": {"prompt_tokens": 50, "total_tokens": 50}}),
    )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    failed = _chat(9, DAY1).model_copy(update={
        "id": "failed", "response": ResponsePart(status_code=500, body={"error": {}})})
    listing = _chat(8, DAY1).model_copy(update={
        "id": "models", "request": RequestPart(method="GET", path="/v1/models"),
        "response": ResponsePart(status_code=200, body={"data": []})})
    append_records(folder, [_chat(n, DAY1) for n in range(3)] + [_embedding(DAY1), failed,
                                                                  listing]
                   + [_chat(n, DAY2) for n in range(3)])
    return folder


def _plant_agreeing(api: FakeUsageApi) -> None:
    """OpenAI's figures for exactly what the files hold."""
    for day in (DAY1, DAY2):
        api.plant("completions", day, model="gpt-4o-2024-08-06", num_model_requests=3,
                  input_tokens=3000, input_cached_tokens=600, output_tokens=300)
    api.plant("embeddings", DAY1, model="text-embedding-3-small", num_model_requests=1,
              input_tokens=50)
    api.plant("costs", DAY1, amount={"value": 3 * CHAT_USD + 50 * 0.02 / 1e6,
                                     "currency": "usd"}, line_item="gpt-4o, input")
    api.plant("costs", DAY2, amount={"value": 3 * CHAT_USD, "currency": "usd"})


@pytest.fixture
def api() -> Iterator[FakeUsageApi]:
    with serve_fake_usage_api(FakeUsageApi(page_days=2)) as fake:
        yield fake


def _env(logs: Path, tmp_path: Path, api: FakeUsageApi, key: str | None = ADMIN_KEY
         ) -> dict[str, str]:
    env = {"LOCAL_LOG_DIR": str(logs), "EXPLORER_CACHE_DIR": str(tmp_path / "cache"),
           "EXPLORER_ADMIN_API_URL": api.base_url, "EXPLORER_ADMIN_API_BACKOFF_S": "0.01",
           "EXPLORER_ADMIN_API_RETRIES": "3"}
    if key is not None:
        env["OPENAI_ADMIN_KEY"] = key
    return env


def _reconcile(env: dict[str, str], cwd: Path, fmt: str = "json") -> tuple[int, Any, str]:
    result = run_explorer(["reconcile", "--from", DAY1.isoformat(), "--to", DAY3.isoformat(),
                           "--format", fmt], env, cwd)
    out = json.loads(result.stdout) if fmt == "json" and result.stdout else result.stdout
    return result.returncode, out, result.stderr


def _rows(document: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["day"], r["model"], r["metric"]): r for r in document["rows"]}


def test_files_that_match_openai_pass_across_pages_and_a_429(
    logs: Path, tmp_path: Path, api: FakeUsageApi
) -> None:
    _plant_agreeing(api)
    api.fail_next("completions", 429, 429)
    code, document, stderr = _reconcile(_env(logs, tmp_path, api), tmp_path)
    assert code == 0, (stderr, document)
    assert document["partial"] is False and document["flagged"] is False
    rows = _rows(document)
    chat = {metric: rows[("2025-03-04", "gpt-4o-2024-08-06", metric)]
            for metric in ("requests", "input_tokens", "cached_tokens", "output_tokens")}
    assert [(r["files"], r["openai"]) for r in chat.values()] == [
        (3, 3), (3000, 3000), (600, 600), (300, 300)]
    assert rows[("2025-03-04", "*", "cost_usd")]["files"] == pytest.approx(
        3 * CHAT_USD + 50 * 0.02 / 1e6, abs=1e-6)
    # The failed call and the /v1/models listing are not model requests.
    assert ("2025-03-04", "gpt-4o", "requests") not in rows
    completions = [query for path, query in api.requests if path.endswith("/completions")]
    assert len(completions) == 2 + 2  # two throttled, then two pages (three days, two a page)
    assert "page" not in completions[2] and completions[3]["page"] == ["page_1741219200"]
    assert completions[3]["group_by"] == ["model"] and completions[3]["bucket_width"] == ["1d"]


def test_planted_differences_are_flagged_and_exit_1(
    logs: Path, tmp_path: Path, api: FakeUsageApi
) -> None:
    _plant_agreeing(api)
    # Traffic that bypassed the proxy: two more calls on day 2, and a model on day 3.
    api.results["completions"][DAY2][0].update(num_model_requests=5, input_tokens=5000,
                                                input_cached_tokens=600, output_tokens=500)
    api.plant("completions", DAY3, model="gpt-4.1-2025-04-14", num_model_requests=7,
              input_tokens=700, output_tokens=70)
    api.plant("costs", DAY3, amount={"value": 0.25, "currency": "usd"})
    code, document, _ = _reconcile(_env(logs, tmp_path, api), tmp_path)
    assert code == 1 and document["flagged"] is True
    rows = _rows(document)
    flagged = {key for key, row in rows.items() if row["flagged"]}
    assert flagged == {
        ("2025-03-05", "gpt-4o-2024-08-06", "requests"),
        ("2025-03-05", "gpt-4o-2024-08-06", "input_tokens"),
        ("2025-03-05", "gpt-4o-2024-08-06", "output_tokens"),
        ("2025-03-06", "gpt-4.1-2025-04-14", "requests"),
        ("2025-03-06", "gpt-4.1-2025-04-14", "input_tokens"),
        ("2025-03-06", "gpt-4.1-2025-04-14", "output_tokens"),
        ("2025-03-06", "*", "cost_usd"),
    }
    assert rows[("2025-03-05", "gpt-4o-2024-08-06", "requests")]["difference"] == -2

    table = run_explorer(["reconcile", "--from", "2025-03-04", "--to", "2025-03-06"],
                         _env(logs, tmp_path, api), tmp_path)
    assert table.returncode == 1
    assert sum("DIFFERS" in line for line in table.stdout.splitlines()) == 7
    csv_out = run_explorer(["reconcile", "--from", "2025-03-04", "--to", "2025-03-06",
                            "--format", "csv"], _env(logs, tmp_path, api), tmp_path)
    assert csv_out.stdout.splitlines()[0] == "day,model,metric,files,openai,difference,flagged,note"


def test_an_endpoint_that_keeps_failing_gives_a_marked_partial_result(
    logs: Path, tmp_path: Path, api: FakeUsageApi
) -> None:
    _plant_agreeing(api)
    api.fail_next("costs", 503, 503, 503, 503)  # beyond the three retries
    code, document, stderr = _reconcile(_env(logs, tmp_path, api), tmp_path)
    assert code == 1
    assert document["partial"] is True
    assert document["partial_reasons"] == ["organization/costs: HTTP 503 after 4 attempts"]
    assert "partial" in stderr
    costs = [row for row in document["rows"] if row["metric"] == "cost_usd"]
    assert costs and all(not row["flagged"] and "partial" in row["note"] for row in costs)
    api.fail_next("costs", 503, 503, 503, 503)
    table = run_explorer(["reconcile", "--from", "2025-03-04", "--to", "2025-03-06"],
                         _env(logs, tmp_path, api), tmp_path)
    assert table.stdout.startswith("PARTIAL: organization/costs")


@pytest.mark.parametrize(("key", "says"), [
    (None, "OPENAI_ADMIN_KEY is not set"),
    ("sk-wrong", "OPENAI_ADMIN_KEY is invalid"),
    (PROJECT_KEY, "OPENAI_ADMIN_KEY is not an admin key"),
])
def test_a_missing_invalid_or_non_admin_key_is_one_line_and_exit_2(
    logs: Path, tmp_path: Path, api: FakeUsageApi, key: str | None, says: str
) -> None:
    result = run_explorer(["reconcile", "--from", "2025-03-04", "--to", "2025-03-06"],
                          _env(logs, tmp_path, api, key), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("explorer: ") and says in lines[0]
    assert result.stdout == ""
    if key:
        assert key not in result.stderr


def test_the_web_page_shows_the_comparison(logs: Path, tmp_path: Path, api: FakeUsageApi) -> None:
    _plant_agreeing(api)
    api.plant("completions", DAY3, model="gpt-4.1-2025-04-14", num_model_requests=7)
    settings = ExplorerSettings(
        local_log_dir=logs, explorer_cache_dir=tmp_path / "cache",
        openai_admin_key=SecretStr(ADMIN_KEY), explorer_admin_api_url=api.base_url,
        explorer_admin_api_backoff_s=0.01, _env_file=None,  # type: ignore[call-arg]
    )
    with TestClient(create_app(settings)) as client:
        page = client.get("/reconcile?from=2025-03-04&to=2025-03-06").text
    assert "Differences beyond the tolerance are flagged" in page
    assert page.count('class="flagged"') == 1 and "gpt-4.1-2025-04-14" in page
