"""The web UI in-process: access control, escaping, filters, exports, errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from explorer.settings import ExplorerSettings
from explorer.web.app import create_app
from tests.explorer.conftest import SCRIPT_PROMPT, run_explorer

DAYS = "from=2024-10-21&to=2024-10-22"
HTML = {"accept": "text/html"}


def _client(logs: Path, tmp_path: Path, token: str | None = None) -> TestClient:
    settings = ExplorerSettings(
        local_log_dir=logs,
        explorer_cache_dir=tmp_path / "cache",
        explorer_token=SecretStr(token) if token else None,
        _env_file=None,  # type: ignore[call-arg]
    )
    return TestClient(create_app(settings), follow_redirects=False)


@pytest.fixture
def client(logs: Path, tmp_path: Path) -> Iterator[TestClient]:
    with _client(logs, tmp_path) as client:
        yield client


def test_record_page_shows_untrusted_text_escaped(client: TestClient) -> None:
    page = client.get("/records/xss-1")
    assert page.status_code == 200
    assert "<script>window" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;window.__pwned" in page.text
    assert "&lt;/pre&gt;&lt;script&gt;alert(3)" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # none: default 'none'
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert client.get("/records/no-such-id").status_code == 404


def test_request_list_filters_and_text_search(client: TestClient) -> None:
    page = client.get(f"/requests?{DAYS}&status=error")
    assert page.text.count('class="record"') == 3
    page = client.get(f"/requests?{DAYS}&status=5xx&error_type=http_502")  # a text body
    assert page.text.count('class="record"') == 1
    page = client.get(f"/requests?{DAYS}&error_type=upstream_timeout")
    assert page.text.count('class="record"') == 1
    page = client.get(f"/requests?{DAYS}&q=ONCE+UPON")  # the answer of a Responses call
    assert page.text.count('class="record"') == 1 and "/records/resp-1" in page.text
    page = client.get(f"/requests?{DAYS}&q=onerror%3Dalert")  # text in a prompt
    assert "/records/xss-1" in page.text and page.text.count('class="record"') == 1
    page = client.get(f"/requests?{DAYS}&q=gpt-4o")  # a model name is neither prompt nor answer
    assert page.text.count('class="record"') == 0
    assert client.get(f"/requests?{DAYS}&status=teapot").status_code == 400
    assert client.get("/requests?from=yesterday").status_code == 400


def test_exports_follow_the_current_view(client: TestClient) -> None:
    exported = client.get(f"/export/requests.csv?{DAYS}&user=carol")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(row["model"] for row in rows) == [*["gpt-4o-mini"] * 3, "my-local-model"]
    lines = client.get(f"/export/overview.jsonl?{DAYS}&by=user").text.splitlines()
    csv_lines = client.get(f"/export/overview.csv?{DAYS}&by=user").text.splitlines()
    assert len(lines) == len(csv_lines) - 1 > 0


def test_user_and_model_pages_are_narrowed(client: TestClient) -> None:
    page = client.get(f"/users/carol?{DAYS}")
    assert 'id="total-calls">4<' in page.text
    page = client.get(f"/models/gpt-4o?{DAYS}")
    assert 'id="total-calls">1<' in page.text


def test_a_token_guards_every_page(logs: Path, tmp_path: Path) -> None:
    with _client(logs, tmp_path, token="s3cret") as client:
        assert client.get("/", headers=HTML).headers["location"].startswith("/login?next=")
        denied = client.get("/export/requests.csv")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "token_required"
        bearer = {"authorization": "Bearer s3cret"}
        assert client.get(f"/?{DAYS}", headers=bearer).status_code == 200
        assert client.get(f"/?{DAYS}", headers={"x-explorer-token": "wrong"}).status_code == 401
        assert client.post("/login", data={"token": "wrong", "next": "/"}).status_code == 401
        login = client.post("/login", data={"token": "s3cret", "next": "//evil.example/"})
        assert login.status_code == 303 and login.headers["location"] == "/"
        assert "s3cret" not in login.headers["set-cookie"]
        assert client.get(f"/requests?{DAYS}").status_code == 200  # the session cookie


@pytest.mark.slow
def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    result = run_explorer(["serve"], {"EXPLORER_HOST": "0.0.0.0"}, tmp_path)
    assert result.returncode == 2
    assert "EXPLORER_TOKEN" in result.stderr
    assert SCRIPT_PROMPT not in result.stderr
