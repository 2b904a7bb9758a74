"""A small log folder with every case the explorer must count right, and ways to run it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.record import ExchangeError, Record, RequestPart, ResponsePart
from tests.factories import append_records, log_file_name, make_record

LONG_USER = "team/" + "ü_" * 60 + "end"  # encodes far past the 96-byte name limit
SCRIPT_PROMPT = (
    '<script>window.__pwned = 1; alert("x")</script><img src=x onerror=alert(2)> & <b>bold</b>'
)
T = datetime(2024, 10, 21, 23, 59, 59, 900000, tzinfo=UTC)

PRICES = {
    "prices": [
        {"model": "gpt-4o-mini", "input": 1.0, "cached_input": 0.5, "output": 2.0,
         "effective_from": None, "effective_to": "2024-10-22", "source": "test: before"},
        {"model": "gpt-4o-mini", "input": 2.0, "cached_input": 1.0, "output": 4.0,
         "effective_from": "2024-10-22", "effective_to": None, "source": "test: after"},
        {"model": "gpt-4o", "input": 2.5, "cached_input": None, "output": 10.0,
         "effective_from": None, "effective_to": None, "source": "test: no cache price"},
    ]
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def chat(user: str | None, model: str | None, ts: datetime, **fields: Any) -> Record:
    usage = fields.pop("usage", None)
    record = make_record(user_id=user, model=model, timestamp=ts, **fields)
    if usage is not None and record.response is not None:
        record.response.body["usage"] = usage
    return record


def dataset() -> list[Record]:
    """Records across UTC midnight, three usage shapes, errors, unpriced models, a cut name."""
    chat_usage = {"prompt_tokens": 120, "completion_tokens": 30,
                  "prompt_tokens_details": {"cached_tokens": 100}}
    records = [
        chat("alice", "gpt-4o-mini", T, usage=chat_usage, duration_ms=100.0),
        chat("alice", "gpt-4o-mini", at("2024-10-22T00:00:00.100+00:00"), usage=chat_usage,
             duration_ms=300.0, ttfb_ms=40.0),
        chat("alice", "gpt-4o-mini", at("2024-10-22T01:30:00+02:00"), usage=chat_usage,
             duration_ms=200.0, ttfb_ms=20.0),  # 23:30 UTC on the 21st
        Record(
            id="resp-1", timestamp=at("2024-10-22T08:00:00+00:00"), user_id="bob", model="gpt-4o",
            duration_ms=900.0, ttfb_ms=95.5,
            request=RequestPart(method="POST", path="/v1/responses",
                                body={"model": "gpt-4o", "input": "Tell me a story"}),
            response=ResponsePart(status_code=200, streaming=True, body={
                "output": [{"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": "Once upon a time"}]}],
                "usage": {"input_tokens": 50, "output_tokens": 400,
                          "input_tokens_details": {"cached_tokens": 10}}}),
        ),
        Record(
            id="emb-1", timestamp=at("2024-10-22T09:00:00+00:00"), user_id="bob",
            model="text-embedding-3-small", duration_ms=15.0,
            request=RequestPart(method="POST", path="/v1/embeddings",
                                body={"model": "text-embedding-3-small", "input": "hello"}),
            response=ResponsePart(status_code=200, body={
                "data": [], "usage": {"prompt_tokens": 7, "total_tokens": 7}}),
        ),
        chat("carol", "my-local-model", at("2024-10-22T10:00:00+00:00"),
             usage={"prompt_tokens": 5, "completion_tokens": 5}, duration_ms=50.0),
        chat("carol", "gpt-4o-mini", at("2024-10-22T11:00:00+00:00"), duration_ms=5000.0,
             response=ResponsePart(status_code=500, body={"error": {
                 "message": "boom", "type": "server_error", "code": None}})),
        chat("carol", "gpt-4o-mini", at("2024-10-22T11:05:00+00:00"), duration_ms=30000.0,
             response=None, error=ExchangeError(type="upstream_timeout", message="no answer")),
        chat("carol", "gpt-4o-mini", at("2024-10-22T11:10:00+00:00"), duration_ms=12.0,
             response=ResponsePart(status_code=502, body="<html>Bad gateway</html>")),
        chat(LONG_USER, "gpt-4o-mini", at("2024-10-22T12:00:00+00:00"), usage=chat_usage,
             duration_ms=80.0),
        chat("mallory", "gpt-4o-mini", at("2024-10-22T13:00:00+00:00"), usage=chat_usage,
             duration_ms=70.0, record_id="xss-1"),
        Record(
            id="models-1", timestamp=at("2024-10-22T14:00:00+00:00"), user_id=None, model=None,
            duration_ms=5.0, request=RequestPart(method="GET", path="/v1/models"),
            response=ResponsePart(status_code=200, body={"data": []}),
        ),
    ]
    xss = records[10]
    xss.request.body["messages"][0]["content"] = SCRIPT_PROMPT
    assert xss.response is not None
    xss.response.body["choices"][0]["message"]["content"] = "</pre><script>alert(3)</script>"
    return records


def write_dataset(directory: Path) -> list[Record]:
    records = dataset()
    append_records(directory, records)
    # A torn last line, as while the shipper appends; and a file that is not a log file.
    torn = directory / log_file_name("alice", "gpt-4o-mini", T)
    with open(torn, "ab") as file:
        file.write(b'{"id": "torn", "timestamp": "2024-10-21T23:')
    (directory / "notes.txt").write_text("not a log file")
    return records


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    write_dataset(directory)
    return directory


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(PRICES))
    return path


def run_explorer(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -m explorer ...`` with only ``env`` as configuration."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith(
        ("EXPLORER_", "STORAGE_", "LOCAL_LOG", "AZURE_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "explorer", *args],
        env=full_env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )


HOSTILE_USER = '<script>window.__pwned = 1</script>"team'
HOSTILE_MODEL = "<img src=x onerror=alert(1)>&model"
DEMO_LAST_DAY = datetime(2024, 10, 22, tzinfo=UTC)


def demo_dataset(days: int = 60, seed: int = 20) -> list[Record]:
    """Two months of a small team's calls, for the screenshot and the browser's chart checks.

    Priced models, one model without a price, errors of several kinds, streamed calls;
    in the first month only, a user and a model whose names are markup that must stay
    text (the screenshot shows the second month).
    """
    rng = random.Random(seed)
    models = (("gpt-4o-mini", 1.0), ("gpt-4o", 0.35), ("text-embedding-3-small", 0.3),
              ("my-local-model", 0.15))
    records = []
    for offset in range(days):
        day = DEMO_LAST_DAY - timedelta(days=days - 1 - offset)
        hostile = offset < days // 2
        users = ["alice", "bob", "carol", "dave"] + [HOSTILE_USER] * hostile
        weighted = [*models, *[(HOSTILE_MODEL, 0.1)] * hostile]
        busy = 0.6 if day.weekday() >= 5 else 1.0 + offset / days
        for _ in range(int(rng.randint(20, 35) * busy)):
            model = rng.choices([m for m, _ in weighted], [w for _, w in weighted])[0]
            ts = day + timedelta(seconds=rng.randint(0, 86_399))
            prompt = rng.randint(200, 3000)
            usage = {"prompt_tokens": prompt, "completion_tokens": rng.randint(20, 800),
                     "prompt_tokens_details": {"cached_tokens": rng.choice((0, prompt // 2))}}
            fields: dict[str, Any] = {"usage": usage,
                                      "duration_ms": round(rng.lognormvariate(6.3, 0.5), 1)}
            if rng.random() < 0.3:
                fields["ttfb_ms"] = round(rng.lognormvariate(5.0, 0.4), 1)
            failure = rng.random()
            if failure < 0.03:
                del fields["usage"]
            if failure < 0.02:
                fields["response"] = ResponsePart(status_code=429, body={"error": {
                    "message": "slow down", "type": "rate_limit_exceeded", "code": None}})
            elif failure < 0.03:
                fields["response"] = None
                fields["error"] = ExchangeError(type="upstream_timeout", message="no answer")
            records.append(chat(rng.choice(users), model, ts, **fields))
    return records
