"""Running ``wrk`` with a POST of a small chat completion, and reading its figures.

Debian's wrk has no ``-R`` (wrk2's fixed rate). A fixed moderate rate is approximated
with wrk's ``delay()`` hook: each connection waits ``1000 * connections / rate`` ms
before each request. That is a paced closed loop, not wrk2's open loop, so a stall is
not charged to the requests that would have been sent during it (coordinated
omission): at a rate every target sustains the difference is small.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.probes import cpu_seconds
from bench.targets import CLIENT_KEY, chat_body

_SCRIPT = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
{delay}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    connections: int
    requests: int
    errors: int
    non2xx: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if not binary:
        raise RuntimeError("no wrk binary: run `make bench`, which installs it")
    return binary


def wrk_version() -> str:
    done = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).split()[1]


def run_wrk(
    url: str,
    model: str,
    workdir: Path,
    *,
    connections: int,
    duration_s: float,
    rate_per_s: float | None = None,
) -> WrkResult:
    """One wrk run against ``url``; bounded by ``duration_s`` plus a grace period."""
    body = chat_body(model)
    delay = ""
    if rate_per_s is not None:
        delay = f"function delay() return {1000 * connections / rate_per_s:.3f} end"
    script = workdir / f"wrk_{connections}_{rate_per_s}.lua"
    script.write_text(_SCRIPT.format(body=body, delay=delay, key=CLIENT_KEY))
    threads = min(2, connections)
    done = subprocess.run(
        [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
         "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, timeout=duration_s + 30, check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result for {url}: {done.stdout}{done.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds = raw["duration_us"] / 1e6
    return WrkResult(
        connections=connections,
        requests=raw["requests"],
        errors=raw["errors"],
        non2xx=raw["non2xx"],
        rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )


def run_wrk_costed(url: str, model: str, workdir: Path, pid: int | None, *, connections: int,
                   duration_s: float) -> tuple[WrkResult, int | None]:
    """``run_wrk``, and the CPU time per answered request (µs) that ``pid``'s process tree
    used meanwhile (None without a pid or an answer)."""
    before_s = cpu_seconds(pid) if pid is not None else 0.0
    run = run_wrk(url, model, workdir, connections=connections, duration_s=duration_s)
    if pid is None or not run.requests:
        return run, None
    return run, round((cpu_seconds(pid) - before_s) / run.requests * 1e6)
