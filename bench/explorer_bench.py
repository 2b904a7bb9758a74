"""Explorer benchmark: a 30-day overview, the request list and RSS over generated logs.

``python -m bench.explorer_bench [--records N] [--azure-records N]``

Generates N records (default 1,000,000, about 2 KB each: about 2 GB) for 10 users,
5 models and 30 days into a temporary folder, under the shipper's file names
(``shared.naming``), then starts ``python -m explorer serve`` on it and times, over
HTTP:

* the 30-day overview with no summaries (cold: every file is scanned), in a fresh
  process with the summaries on disk (warm), and again in the same process (hot);
* the first page of the request list, unfiltered and filtered (user + status);
* one record page;

and reads the server's peak RSS (``VmHWM``). ``explorer report`` is timed the same way as
a whole process. The same runs against Azurite with a smaller dataset. Results go to
``bench/results/explorer.md``; the generated data is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from azure.storage.blob import BlobServiceClient

from shared.ids import new_record_id
from shared.naming import file_name, file_stem
from shared.record import Record
from tests.support.azurite import Azurite
from tests.support.ports import free_port, wait_for_port

RESULTS = Path(__file__).resolve().parent / "results" / "explorer.md"
USERS = tuple(f"user-{n:02d}" for n in range(10))
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini", "acme-finetune-v2")
DAYS = 30
LAST_DAY = date(2026, 11, 30)
WORDS = (
    "the quick brown fox jumps over a lazy dog while seven engineers argue about latency "
    "budgets tokens caches streams retries and the price of every single call"
).split()
_APPEND_BYTES = 4 * 1024 * 1024


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _line(rng: random.Random, prompts: list[str], user: str, model: str, ts: datetime) -> bytes:
    failed = rng.random() < 0.03
    streaming = rng.random() < 0.3
    prompt_tokens = rng.randint(200, 1500)
    record = {
        "schema_version": 1,
        "id": new_record_id(),
        "timestamp": ts.isoformat(),
        "user_id": user,
        "model": model,
        "duration_ms": round(rng.lognormvariate(6.5, 0.6), 1),
        "ttfb_ms": round(rng.lognormvariate(5.0, 0.5), 1) if streaming else None,
        "request": {
            "method": "POST",
            "path": "/v1/chat/completions",
            "query": "",
            "headers": {"content-type": "application/json", "user-agent": "OpenAI/Python 1.54"},
            "body": {
                "model": model,
                "stream": streaming,
                "messages": [
                    {"role": "system", "content": "You are a careful assistant."},
                    {"role": "user", "content": rng.choice(prompts)},
                ],
            },
        },
        "response": {
            "status_code": 500 if failed else 200,
            "headers": {"content-type": "application/json"},
            "streaming": streaming,
            "body": {"error": {"message": "server error", "type": "server_error", "code": None}}
            if failed
            else {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": rng.choice(prompts)[:500]},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": rng.randint(20, 400),
                    "prompt_tokens_details": {"cached_tokens": rng.choice((0, 0, 128, 512))},
                },
            },
        },
        "error": None,
    }
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def generate(folder: Path, records: int, seed: int = 7) -> int:
    """Write ``records`` records into per-user/model/day files; returns the bytes written."""
    rng = random.Random(seed)
    prompts = [_text(rng, rng.randint(110, 200)) for _ in range(300)]
    sample = _line(rng, prompts, USERS[0], MODELS[0], datetime.now(UTC))
    Record.from_json(sample)  # the generated lines are valid records
    folder.mkdir(parents=True, exist_ok=True)
    files = [(u, m, d) for u in USERS for m in MODELS for d in range(DAYS)]
    per_file = records // len(files)
    extra = records - per_file * len(files)
    written = 0
    for number, (user, model, day_offset) in enumerate(files):
        day = LAST_DAY - timedelta(days=DAYS - 1 - day_offset)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        count = per_file + (1 if number < extra else 0)
        seconds = sorted(rng.uniform(0, 86_399.999) for _ in range(count))
        lines = [_line(rng, prompts, user, model, start + timedelta(seconds=s)) for s in seconds]
        name = file_name(file_stem(user, model, start))
        data = b"".join(lines)
        (folder / name).write_bytes(data)
        written += len(data)
    return written


@dataclass
class Figures:
    label: str
    records: int
    data_bytes: int
    files: int
    timings_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    load_averages: list[float] = field(default_factory=list)
    """The machine's 1-minute load average at the start and the end of the measurements."""


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def _server(env: dict[str, str], cwd: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "explorer", "serve"],
        env={**env, "EXPLORER_PORT": str(port)},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout_s=60)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _timed_get(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response


def _median_get(client: httpx.Client, url: str, runs: int = 5) -> float:
    return statistics.median(_timed_get(client, url)[0] for _ in range(runs))


def measure(
    label: str, env: dict[str, str], records: int, data_bytes: int, files: int, workdir: Path
) -> Figures:
    figures = Figures(label, records, data_bytes, files)
    figures.load_averages.append(os.getloadavg()[0])
    first = LAST_DAY - timedelta(days=DAYS - 1)
    days = f"from={first}&to={LAST_DAY}"
    with httpx.Client(timeout=600) as client:
        with _server(env, workdir) as (base, pid):
            figures.timings_s["overview, cold (no summaries)"] = _timed_get(
                client, f"{base}/?{days}"
            )[0]
            figures.timings_s["overview, hot (same process)"] = _median_get(
                client, f"{base}/?{days}"
            )
            figures.timings_s["request list, first page"] = _median_get(
                client, f"{base}/requests?{days}"
            )
            figures.timings_s["request list, user + status=error"] = _median_get(
                client, f"{base}/requests?{days}&user={USERS[3]}&status=error"
            )
            page = client.get(f"{base}/requests?{days}&user={USERS[1]}").text
            record_id = page.split('href="/records/', 1)[1].split('"', 1)[0]
            figures.timings_s["record page"] = _median_get(client, f"{base}/records/{record_id}")
            figures.timings_s["request list, text search (1 day of files)"] = _median_get(
                client, f"{base}/requests?{days}&q=careful", runs=3
            )
            figures.peak_rss_mb = _peak_rss_mb(pid)
        with _server(env, workdir) as (base, pid):
            figures.timings_s["overview, warm (summaries on disk, new process)"] = _timed_get(
                client, f"{base}/?{days}"
            )[0]
            figures.timings_s["request list, first page (new process)"] = _timed_get(
                client, f"{base}/requests?{days}"
            )[0]
            figures.peak_rss_mb = max(figures.peak_rss_mb, _peak_rss_mb(pid))
    report = [
        sys.executable,
        "-m",
        "explorer",
        "report",
        "--from",
        str(first),
        "--to",
        str(LAST_DAY),
        "--by",
        "model,day",
        "--format",
        "json",
    ]
    started = time.perf_counter()
    subprocess.run(report, env=env, cwd=workdir, check=True, capture_output=True)
    figures.timings_s["`explorer report` process, warm"] = time.perf_counter() - started
    figures.load_averages.append(os.getloadavg()[0])
    return figures


def _base_env(cache: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EXPLORER_", "STORAGE_", "LOCAL_LOG", "AZURE_"))
    }
    env["EXPLORER_CACHE_DIR"] = str(cache)
    return env


def run_local(root: Path, records: int) -> Figures:
    logs = root / "logs"
    started = time.perf_counter()
    data_bytes = generate(logs, records)
    print(
        f"generated {records:,} records, {data_bytes / 1e9:.2f} GB "
        f"in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    env = _base_env(root / "cache") | {"STORAGE_TYPE": "local", "LOCAL_LOG_DIR": str(logs)}
    files = len(list(logs.iterdir()))
    return measure("local disk", env, records, data_bytes, files, root)


def run_azure(root: Path, records: int) -> Figures:
    logs = root / "azure-logs"
    data_bytes = generate(logs, records, seed=11)
    with Azurite(root / "azurite") as azurite:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container("bench-explorer")
        for path in logs.iterdir():
            blob = service.get_blob_client("bench-explorer", path.name)
            blob.create_append_blob()
            data = path.read_bytes()
            for offset in range(0, len(data), _APPEND_BYTES):
                blob.append_block(data[offset : offset + _APPEND_BYTES])
        files = len(list(logs.iterdir()))
        shutil.rmtree(logs)
        env = _base_env(root / "azure-cache") | {
            "STORAGE_TYPE": "azure",
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "AZURE_STORAGE_CONTAINER": "bench-explorer",
        }
        return measure("Azurite (in memory)", env, records, data_bytes, files, root)


def write_results(results: list[Figures], command: str) -> None:
    lines = [
        "# Explorer benchmark",
        "",
        f"Command: `{command}` · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · "
        f"{platform.python_implementation()} {platform.python_version()} · "
        f"{os.cpu_count()} cores (shared with other work while measured)",
        "",
        "Targets (issue 12): 30-day overview ≤ 2 s warm, ≤ 30 s cold; request-list page "
        "≤ 300 ms; explorer RSS ≤ 500 MB. Times are wall clock over HTTP from a client on the "
        "same machine; medians of 5 where repeated. The OS page cache was not dropped: "
        "cold means no summaries, the JSONL bytes may still be in memory.",
        "",
    ]
    for figures in results:
        lines += [
            f"## {figures.label}: {figures.records:,} records, "
            f"{figures.data_bytes / 1e9:.2f} GB in {figures.files:,} files",
            "",
            "| measurement | seconds |",
            "|---|---:|",
        ]
        lines += [f"| {name} | {value:.3f} |" for name, value in figures.timings_s.items()]
        loads = " → ".join(f"{load:.1f}" for load in figures.load_averages)
        lines += [
            f"| peak RSS of the server | {figures.peak_rss_mb:.0f} MB |",
            "",
            f"Load average (1 min) at the start → end of these measurements: {loads}.",
            "",
        ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explorer_bench", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--azure-records", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="explorer-bench-", dir=args.workdir))
    try:
        results = [run_local(root, args.records)]
        if args.azure_records:
            results.append(run_azure(root, args.azure_records))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    command = "python -m bench.explorer_bench " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    write_results(results, command.strip())
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
