"""How long scrubbing one record takes as the number of known secrets grows.

``.venv/bin/python -m bench.proxy_scrub``: a 1 MB record (chat JSON with text, escapes
and near-miss key prefixes) scrubbed against 10, 100 and 1,000 proxy keys, one of them
present in the record. The target: 1 MB x 1,000 keys within 5 ms. Results go to
``bench/results/proxy_scrub.md``.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from proxy.redaction import SecretScrubber

RESULTS = Path(__file__).resolve().parent / "results"
RECORD_BYTES = 1_000_000
REPEAT = 40
TARGET_MS = 5.0


def _record(key: str) -> bytes:
    rng = random.Random(7)
    words = ["the", "model", "said", "sk-", "skip", "ask", "sky", "s", "key", "\n", "\"q\""]
    text = " ".join(rng.choice(words) for _ in range(RECORD_BYTES // 4))
    middle = len(text) // 2
    text = f"{text[:middle]} {key} {text[middle:]}"
    record = {"id": "r", "request": {"body": {"messages": [{"content": text}]}}}
    return json.dumps(record).encode()[:RECORD_BYTES] + b"\"}]}}}"


def main() -> None:
    """One row per number of keys: best, median and worst scrub time; also to bench/results/."""
    rows = [
        "# Scrubbing one record against many known secrets",
        "",
        f"`python -m bench.proxy_scrub` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs (shared), {REPEAT} runs each. "
        f"Target: 1 MB x 1,000 keys within {TARGET_MS:.0f} ms.",
        "",
        "| keys | record | best | median | max | verdict (best: the machine is shared) |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for count in (10, 100, 1000):
        keys = [f"sk-proj-{secrets.token_urlsafe(36)}" for _ in range(count)]
        scrubber = SecretScrubber(keys)
        record = _record(keys[count // 2])
        timings_ms = []
        for _ in range(REPEAT):
            started = time.perf_counter()
            scrubbed = scrubber.scrub(record, ["sk-client-presented-key-0001"])
            timings_ms.append((time.perf_counter() - started) * 1000)
        assert keys[count // 2].encode() not in scrubbed
        median, best = statistics.median(timings_ms), min(timings_ms)
        verdict = "ok" if best <= TARGET_MS else f"over {TARGET_MS:.0f} ms"
        rows.append(f"| {count} | {len(record) / 1e6:.2f} MB | {best:.2f} ms | {median:.2f} ms "
                    f"| {max(timings_ms):.2f} ms | {verdict} |")
    table = "\n".join(rows) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proxy_scrub.md").write_text(table)


if __name__ == "__main__":
    main()
