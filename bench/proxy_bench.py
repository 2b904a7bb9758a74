"""The proxy side by side with a direct call, nginx and LiteLLM, in one run on this machine.

Set-up (all on loopback, free ports, stopped at the end): a private ``redis-server``
(the proxy publishes every record; the stream is emptied every second so memory stays
flat); nginx serving a canned chat completion and a 1 GiB download (the upstream); a
paced SSE upstream (``bench.sse_upstream``); nginx as a plain reverse proxy; the floor
of a Python relay (``bench.floor_relay`` on uvicorn, no record); this proxy with
``PROXY_WORKERS=1`` and ``=2``; two rows that price a setting against the first of
these: ``REDIS_MIN_REPLICAS=1`` (its own primary with a local replica; the suite fails
unless every record was published and confirmed, ``bench.published``) and
``STREAM_USAGE=passthrough`` (streaming only); LiteLLM's proxy (pinned, its own venv)
when installed. Each target then gets the same measurements, one target at a time; see
``bench/README.md`` for what each figure means. Last, the floor and the proxy in turn,
for one and two workers (``bench.versus``): the ratios BENCHMARKS.md opens with.
Results: ``bench/results/proxy.json``, ``proxy.md``, ``proxy_latency.png`` and
``BENCHMARKS.md`` at the repository root.
"""

from __future__ import annotations

import asyncio
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import chart, report, versus
from bench.nginx import DOWNLOAD_PATH, Nginx, nginx_version
from bench.probes import (
    GIB,
    rss_bytes,
    rss_during_streams,
    rss_during_transfer,
    stream_timings,
)
from bench.published import check_confirmed, publishing
from bench.rig import RunClock, Stoppers, StreamTrimmer, start_rig, stop_all
from bench.sse_upstream import UPLOAD_PATH
from bench.targets import (
    JSON_MODEL,
    LONG_STREAM_MODEL,
    PROXY_PASSTHROUGH,
    PROXY_WAIT,
    STREAM_MODEL,
    Target,
    litellm_available,
    start_floor,
    start_litellm,
    start_proxy,
    start_sse_upstream,
    wait_until_answering,
)
from bench.wrk import WrkResult, run_wrk, run_wrk_costed, wrk_version
from tests.support.redis_sentinel import ReplicatedRedis

RESULTS = Path(__file__).resolve().parent / "results"
CONNECTIONS = (1, 4, 16, 64, 256)
FIXED_RATE_PER_S = 50.0
FIXED_RATE_CONNECTIONS = 16
OPEN_STREAMS = 200


@dataclass(frozen=True)
class Plan:
    duration_s: float
    streams: int
    open_streams: int
    transfer_bytes: int
    connections: tuple[int, ...]

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(2.0, 10, 50, 64 * 1024**2, (1, 16, 64))
        return cls(5.0, 40, OPEN_STREAMS, GIB, CONNECTIONS)


@dataclass
class TargetResult:
    name: str
    one_connection: WrkResult | None = None
    saturation: list[WrkResult] = field(default_factory=list)
    fixed_rate: WrkResult | None = None
    streaming: dict[str, Any] | None = None
    rss_idle_bytes: int | None = None
    rss_open_streams_bytes: int | None = None
    open_streams_completed: int | None = None
    transfers: list[dict[str, Any]] = field(default_factory=list)
    cpu_us_per_request: dict[int, int] = field(default_factory=dict)
    publishing: dict[str, int] | None = None
    note: str = ""

    def answered(self) -> int:
        """Requests wrk counted in this target's measured runs."""
        runs = [self.one_connection, *self.saturation[1:], self.fixed_rate]
        return sum(run.requests for run in runs if run is not None)


def _measure(target: Target, plan: Plan, workdir: Path, *, memory: bool,
             transfers: bool, streaming: bool = True, calls: bool = True) -> TargetResult:
    result = TargetResult(target.name)
    print(f"proxy bench: {target.name}", file=sys.stderr, flush=True)
    if calls:
        _measure_calls(target, plan, workdir, result, memory=memory)
    if streaming:
        if not calls:  # warm-up: the first stream opens the target's upstream connection
            asyncio.run(stream_timings(target.stream_url, STREAM_MODEL, 3))
        timings = asyncio.run(stream_timings(target.stream_url, STREAM_MODEL, plan.streams))
        result.streaming = asdict(timings)
    if memory and streaming and target.pid is not None:
        peak, completed = asyncio.run(rss_during_streams(
            target.stream_url, LONG_STREAM_MODEL, target.pid, plan.open_streams))
        result.rss_open_streams_bytes, result.open_streams_completed = peak, completed
    if transfers and target.pid is not None:
        base = target.stream_url.rsplit("/v1/", 1)[0]
        json_base = target.json_url.rsplit("/v1/", 1)[0]
        up = asyncio.run(rss_during_transfer(base + UPLOAD_PATH.decode(), target.pid, "upload",
                                             plan.transfer_bytes))
        down = asyncio.run(rss_during_transfer(json_base + DOWNLOAD_PATH, target.pid,
                                               "download", plan.transfer_bytes))
        result.transfers = [asdict(up), asdict(down)]
    return result


def _measure_calls(target: Target, plan: Plan, workdir: Path, result: TargetResult, *,
                   memory: bool) -> None:
    """wrk's figures: one connection, saturation (with CPU per request), fixed rate."""
    run_wrk(target.json_url, JSON_MODEL, workdir, connections=4, duration_s=1.0)  # warm-up
    if memory and target.pid is not None:
        time.sleep(1.0)
        result.rss_idle_bytes = rss_bytes(target.pid)
    result.one_connection = run_wrk(target.json_url, JSON_MODEL, workdir, connections=1,
                                    duration_s=plan.duration_s)
    for connections in plan.connections:
        if connections == 1:
            result.saturation.append(result.one_connection)
            continue
        run, cpu_us = run_wrk_costed(target.json_url, JSON_MODEL, workdir, target.pid,
                                     connections=connections, duration_s=plan.duration_s)
        result.saturation.append(run)
        if cpu_us is not None:
            result.cpu_us_per_request[connections] = cpu_us
    result.fixed_rate = run_wrk(target.json_url, JSON_MODEL, workdir,
                                connections=FIXED_RATE_CONNECTIONS, duration_s=plan.duration_s,
                                rate_per_s=FIXED_RATE_PER_S)


def _versions() -> dict[str, str]:
    import httpx
    import uvicorn

    from bench.targets import litellm_version

    versions = {"python": platform.python_version(), "nginx": nginx_version(),
                "wrk": wrk_version(), "uvicorn": uvicorn.__version__, "httpx": httpx.__version__,
                "litellm": litellm_version()}
    versions["aiohttp"] = version("aiohttp")
    return versions


def _machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {"cpu": cpu, "cores": str(len(list(Path("/sys/devices/system/cpu").glob("cpu[0-9]*")))),
            "memory_gib": f"{mem_kib / 1024**2:.1f}", "kernel": platform.release(),
            "os": platform.platform()}


def run_suite(*, quick: bool, command: str, with_litellm: bool = True) -> dict[str, Any]:
    """Start everything, measure every target, write the results; returns them."""
    plan = Plan.of(quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: list[TargetResult] = []
    skipped: dict[str, str] = {}
    clock = RunClock(command)
    versus_results: list[versus.Versus] = []
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        workdir = Path(tmp)
        stoppers: Stoppers = []
        try:
            rig = start_rig(workdir, stoppers, plan.transfer_bytes)
            sse_port, sse = start_sse_upstream(workdir)
            stoppers.append(lambda: (sse.terminate(), sse.wait(10)))
            json_up = rig.json_upstream
            stream_up = f"http://127.0.0.1:{sse_port}/v1"
            reverse = Nginx.reverse_proxy(workdir / "nginx-reverse", rig.upstream_port, sse_port)
            reverse.start()
            stoppers.append(reverse.stop)

            direct = Target("direct", f"{json_up}/chat/completions",
                            f"{stream_up}/chat/completions", None)
            results.append(_measure(direct, plan, workdir, memory=False, transfers=False))
            rp = f"http://127.0.0.1:{reverse.port}"
            floor = Target("nginx", f"{rp}/v1/chat/completions",
                           f"{rp}/stream/v1/chat/completions", reverse.pid)
            results.append(_measure(floor, plan, workdir, memory=True, transfers=True))
            results.append(_measure_floor(1, json_up, plan, workdir))
            results.append(_measure_proxy(1, json_up, stream_up, rig.redis_url, plan,
                                          workdir))
            # Right after the row they are compared with, so the machine's load drifts least.
            results.append(_measure_passthrough(stream_up, rig.redis_url, plan, workdir))
            results.append(_measure_wait(json_up, plan, workdir))
            # Two workers against the floor in two workers: on a machine whose cores the
            # load generator shares, each of two processes gets less than a core.
            results.append(_measure_floor(2, json_up, plan, workdir))
            results.append(_measure_proxy(2, json_up, stream_up, rig.redis_url, plan,
                                          workdir))
            if with_litellm:
                reason = litellm_available()
                if reason is None:
                    try:
                        litellm = start_litellm(json_up, stream_up, workdir)
                    except (RuntimeError, TimeoutError) as exc:
                        reason = f"LiteLLM did not start: {exc}"
                    else:
                        stoppers.append(litellm.stop)
                        result = _measure(litellm, plan, workdir, memory=True, transfers=False)
                        result.note = "1 GiB transfers: not a pass-through route in LiteLLM"
                        results.append(result)
                        litellm.stop()  # idle or not, it must not share the cores below
                if reason is not None:
                    skipped["LiteLLM"] = reason
            # The headline against the floor: both side by side, measured in turn.
            versus_plan = versus.Plan.of(quick)
            versus_results = [versus.measure(workers, rig, workdir, versus_plan)
                              for workers in (1, 2)]
        finally:
            stop_all(stoppers)
    payload = {
        **clock.fields(),
        "quick": quick,
        "plan": asdict(plan),
        "fixed_rate_per_s": FIXED_RATE_PER_S,
        "machine": _machine(),
        "versions": _versions(),
        "skipped": skipped,
        "targets": [asdict(result) for result in results],
        "versus": [asdict(result) for result in versus_results],
    }
    (RESULTS / "proxy.json").write_text(json.dumps(payload, indent=2, default=_nan_safe) + "\n")
    chart.latency_chart(payload, RESULTS / "proxy_latency.png")
    (RESULTS / "proxy.md").write_text(report.proxy_tables(payload))
    report.write_benchmarks_md(payload, RESULTS)
    return payload


def _nan_safe(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def _measure_floor(workers: int, json_up: str, plan: Plan, workdir: Path) -> TargetResult:
    """The floor's wrk figures (and, in one worker, its memory); it has no streaming."""
    relay = start_floor(json_up.removesuffix("/v1"), workdir, workers=workers)
    try:
        wait_until_answering(relay.json_url, JSON_MODEL)
        result = _measure(relay, plan, workdir, memory=workers == 1, transfers=False,
                          streaming=False)
    finally:
        relay.stop()
    result.note = ("reads each response whole: no streaming, no transfers" if workers == 1
                   else "as the floor, in two worker processes")
    return result


def _measure_proxy(workers: int, json_up: str, stream_up: str, redis_url: str,
                   plan: Plan, workdir: Path) -> TargetResult:
    name = f"proxy ({workers} worker{'s' if workers > 1 else ''})"
    slug = f"proxy-w{workers}"
    env: dict[str, str] = {}
    json_proxy = start_proxy(slug, json_up, redis_url, workers, workdir, env)
    stream_proxy: Target | None = None
    try:
        wait_until_answering(json_proxy.json_url, JSON_MODEL)
        stream_proxy = start_proxy(slug + "-stream", stream_up, redis_url, workers, workdir, env)
        target = Target(name, json_proxy.json_url, stream_proxy.stream_url, json_proxy.pid)
        result = _measure(target, plan, workdir, memory=False, transfers=False)
        # Memory is the streaming proxy's: it is the one holding the open streams and the
        # upload; the download comes through the JSON one.
        assert stream_proxy.pid is not None and json_proxy.pid is not None
        time.sleep(1.0)
        result.rss_idle_bytes = rss_bytes(json_proxy.pid)
        peak, completed = asyncio.run(rss_during_streams(
            stream_proxy.stream_url, LONG_STREAM_MODEL, stream_proxy.pid, plan.open_streams))
        result.rss_open_streams_bytes, result.open_streams_completed = peak, completed
        up = asyncio.run(rss_during_transfer(
            stream_proxy.stream_url.rsplit("/v1/", 1)[0] + UPLOAD_PATH.decode(),
            stream_proxy.pid, "upload", plan.transfer_bytes))
        down = asyncio.run(rss_during_transfer(
            json_proxy.json_url.rsplit("/v1/", 1)[0] + DOWNLOAD_PATH, json_proxy.pid,
            "download", plan.transfer_bytes))
        result.transfers = [asdict(up), asdict(down)]
        return result
    finally:
        json_proxy.stop()
        if stream_proxy is not None:
            stream_proxy.stop()


def _measure_passthrough(stream_up: str, redis_url: str, plan: Plan,
                         workdir: Path) -> TargetResult:
    """Streaming figures only, of a proxy that does not ask for usage on streams."""
    proxy = start_proxy("proxy-passthrough", stream_up, redis_url, 1, workdir,
                        {"STREAM_USAGE": "passthrough"})
    try:
        target = Target(PROXY_PASSTHROUGH, proxy.json_url, proxy.stream_url, proxy.pid)
        return _measure(target, plan, workdir, memory=False, transfers=False, calls=False)
    finally:
        proxy.stop()


def _measure_wait(json_up: str, plan: Plan, workdir: Path) -> TargetResult:
    """The call figures (no streaming, no memory) of a proxy with ``REDIS_MIN_REPLICAS=1``,
    publishing to a primary of its own with one replica.

    Fails unless every record was published and confirmed (``bench.published``).
    """
    with ReplicatedRedis(workdir / "redis-replicated", replicas=1) as servers:
        trimmer = StreamTrimmer(servers.url)
        trimmer.start()
        proxy = start_proxy("proxy-wait", json_up, servers.url, 1, workdir,
                            {"REDIS_MIN_REPLICAS": "1"})
        try:
            wait_until_answering(proxy.json_url, JSON_MODEL)
            target = Target(PROXY_WAIT, proxy.json_url, proxy.stream_url, proxy.pid)
            result = _measure(target, plan, workdir, memory=False, transfers=False,
                              streaming=False)
            seen = publishing(proxy.json_url.rsplit("/v1/", 1)[0] + "/metrics", servers.url)
        finally:
            proxy.stop()
            trimmer.stop()
    check_confirmed(seen, result.answered())
    result.publishing = asdict(seen)
    return result
