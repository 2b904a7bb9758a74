"""The proxy benchmark's tables (``results/proxy.md``) and ``BENCHMARKS.md``."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from bench.targets import FLOOR, FLOOR_2, PROXY, PROXY_PASSTHROUGH, PROXY_WAIT

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MIB:.0f}"


def _by_name(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {target["name"]: target for target in payload["targets"]}


def _added(target: dict[str, Any], direct: dict[str, Any] | None, key: str) -> float | None:
    if direct is None or target["name"] == "direct":
        return None
    return float(target["one_connection"][key] - direct["one_connection"][key])


def with_calls(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets wrk measured (the ``STREAM_USAGE=passthrough`` row streams only)."""
    return [t for t in payload["targets"] if t["one_connection"] is not None]


def proxy_tables(payload: dict[str, Any]) -> str:
    targets = with_calls(payload)
    direct = _by_name(payload).get("direct")
    lines = ["### One connection (wrk -t1 -c1, POST of a small chat completion)", "",
             "| target | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms "
             "| req/s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in targets:
        one = t["one_connection"]
        lines.append(f"| {t['name']} | {_ms(one['p50_ms'])} | {_ms(one['p90_ms'])} | "
                     f"{_ms(one['p99_ms'])} | {_ms(one['p999_ms'])} | "
                     f"{_ms(_added(t, direct, 'p50_ms'))} | {_ms(_added(t, direct, 'p99_ms'))} "
                     f"| {one['rps']:,.0f} |")
    conns = [r["connections"] for r in targets[0]["saturation"]]
    lines += ["", "### Requests per second by connections (wrk -t2 -cN, saturation)", "",
              "| target | " + " | ".join(f"c={c}" for c in conns) + " | errors + non-2xx |",
              "|---|" + "---:|" * (len(conns) + 1)]
    for t in targets:
        runs = t["saturation"]
        bad = sum(r["errors"] + r["non2xx"] for r in runs)
        lines.append(f"| {t['name']} | " + " | ".join(f"{r['rps']:,.0f}" for r in runs)
                     + f" | {bad} |")
    lines += ["", "### Target's CPU time per request at saturation (µs, all its processes)", "",
              "| target | " + " | ".join(f"c={c}" for c in conns[1:]) + " |",
              "|---|" + "---:|" * len(conns[1:])]
    for t in targets:
        cpu = {int(k): v for k, v in t["cpu_us_per_request"].items()}
        if cpu:
            lines.append(f"| {t['name']} | " + " | ".join(
                f"{cpu[c]:,}" if c in cpu else "—" for c in conns[1:]) + " |")
    lines += ["", "### Latency at saturation (p50 / p99 ms)", "",
              "| target | " + " | ".join(f"c={c}" for c in conns) + " |",
              "|---|" + "---:|" * len(conns)]
    for t in targets:
        lines.append(f"| {t['name']} | " + " | ".join(
            f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}" for r in t["saturation"]) + " |")
    rate = payload["fixed_rate_per_s"]
    lines += ["", f"### Fixed moderate rate: {rate:.0f} req/s over 16 connections (paced wrk)",
              "", "| target | achieved req/s | p50 ms | p90 ms | p99 ms | max ms |",
              "|---|---:|---:|---:|---:|---:|"]
    for t in targets:
        f = t["fixed_rate"]
        lines.append(f"| {t['name']} | {f['rps']:,.1f} | {_ms(f['p50_ms'])} | "
                     f"{_ms(f['p90_ms'])} | {_ms(f['p99_ms'])} | {_ms(f['max_ms'])} |")
    lines += ["", "### Streaming (20 chunks 5 ms apart, one stream at a time)", "",
              "| target | streams ok | TTFB p50 ms | TTFB p99 ms | chunk delay p50 ms "
              "| chunk delay p99 ms | added per chunk p50 ms |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    base = direct["streaming"]["chunk_delay_p50_ms"] if direct else None
    for t in payload["targets"]:
        s = t["streaming"]
        if s is None:
            lines.append(f"| {t['name']} | — | — | — | — | — | — |")
            continue
        added = None if base is None or t["name"] == "direct" else s["chunk_delay_p50_ms"] - base
        lines.append(f"| {t['name']} | {s['streams'] - s['failed']}/{s['streams']} | "
                     f"{_ms(s['ttfb_p50_ms'])} | {_ms(s['ttfb_p99_ms'])} | "
                     f"{_ms(s['chunk_delay_p50_ms'])} | {_ms(s['chunk_delay_p99_ms'])} | "
                     f"{_ms(added)} |")
    size = payload["plan"]["transfer_bytes"] / 1024**3
    lines += ["", f"### Memory (RSS of the target's process tree, MiB; {size:g} GiB transfers)",
              "", "| target | idle | open streams (completed) | upload peak (s) "
              "| download peak (s) | note |", "|---|---:|---:|---:|---:|---|"]
    for t in payload["targets"]:
        if t["name"] == "direct" or (t["rss_idle_bytes"] is None and not t["transfers"]):
            continue
        xfer = {x["direction"]: x for x in t["transfers"]}

        def cell(direction: str, xfer: dict[str, Any] = xfer) -> str:
            x = xfer.get(direction)
            if x is None:
                return "—"
            return f"{_mib(x['peak_rss_bytes'])} ({x['seconds']:.1f}){'' if x['ok'] else ' FAILED'}"

        streams = (f"{_mib(t['rss_open_streams_bytes'])} ({t['open_streams_completed']}/"
                   f"{payload['plan']['open_streams']})"
                   if t["rss_open_streams_bytes"] is not None else "—")
        lines.append(f"| {t['name']} | {_mib(t['rss_idle_bytes'])} | {streams} | "
                     f"{cell('upload')} | {cell('download')} | {t['note']} |")
    for name, reason in payload["skipped"].items():
        lines += ["", f"**{name} left out:** {reason}"]
    return "\n".join(lines) + "\n"


def _targets_check(payload: dict[str, Any]) -> list[str]:
    names = _by_name(payload)
    direct, proxy = names.get("direct"), names.get(PROXY)
    best = max((t for n, t in names.items() if n.startswith("proxy")
                and n not in (PROXY_WAIT, PROXY_PASSTHROUGH)),
               key=lambda t: max(r["rps"] for r in t["saturation"]), default=None)
    litellm = names.get("LiteLLM")
    if direct is None or proxy is None or best is None:
        return []
    p50 = _added(proxy, direct, "p50_ms") or 0.0
    # The direct p99 is noise-prone on a shared machine (it can exceed the proxy's), so
    # the proxy's own p99 stands in as an upper bound of what it adds.
    p99 = proxy["one_connection"]["p99_ms"]
    rows = [f"| added p50, 1 connection ≤ 0.5 ms | {p50:.2f} ms | {_yes(p50 <= 0.5)} |",
            f"| added p99, 1 connection ≤ 2 ms (bound: the proxy's own p99) | {p99:.2f} ms "
            f"| {_yes(p99 <= 2.0)} |"]
    if litellm is not None:
        ours = max(r["rps"] for r in best["saturation"])
        theirs = max(r["rps"] for r in litellm["saturation"])
        ratio = ours / theirs if theirs else float("inf")
        rows.append(f"| at least 20 times LiteLLM's req/s (best of each) | {ratio:.1f} times "
                    f"({ours:,.0f} vs {theirs:,.0f}) | {_yes(ratio >= 20)} |")
    for t in (proxy, best):
        rps = [r["rps"] for r in t["saturation"]]
        drops = [f"{a:,.0f}→{b:,.0f}" for a, b in itertools.pairwise(rps[1:])
                 if b < a * 0.95]
        rows.append(f"| {t['name']}: req/s never drops as connections grow (c≥4, 5% noise) | "
                    f"{' / '.join(f'{r:,.0f}' for r in rps)} | "
                    f"{_yes(not drops)}{' (' + ', '.join(drops) + ')' if drops else ''} |")
    added = proxy["streaming"]["chunk_delay_p50_ms"] - direct["streaming"]["chunk_delay_p50_ms"]
    rows.append(f"| added per-chunk delay ≤ 1 ms (p50) | {added:.2f} ms | {_yes(added <= 1)} |")
    return ["| target | measured | met |", "|---|---|---|", *rows]


class _Asked(NamedTuple):
    """One of issue 24's targets, on one ratio of ``bench/versus.py``'s rounds."""

    ratio: str
    heading: str
    asked: str
    fmt: str
    unit: str
    met: Callable[[float, float], bool]
    bound: float


_VERSUS_TARGETS = (
    _Asked("added_p50_ms", "added p50 at c=1, ms", "added p50 at c=1 ≤ the floor's + 0.15 ms",
           "{:+.2f}", " ms", operator.le, 0.15),
    *(_Asked(f"rps_c{c}", f"req/s c={c}", f"req/s per worker at c={c} ≥ half the floor's",
             "{:.2f}", "", operator.ge, 0.5) for c in (16, 64)),
    *(_Asked(f"cpu_c{c}", f"CPU per call c={c}",
             f"CPU per call at c={c} at most twice the floor's", "{:.2f}", "", operator.le, 2.0)
      for c in (16, 64)),
)
_FLOOR_FIGURES = (("p50_ms", "p50 at c=1, ms", "{:.2f}"), ("rps_c16", "req/s c=16", "{:,.0f}"),
                  ("rps_c64", "req/s c=64", "{:,.0f}"),
                  ("cpu_us_c16", "CPU per call c=16, µs", "{:,.0f}"),
                  ("cpu_us_c64", "CPU per call c=64, µs", "{:,.0f}"))


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count > 1 else ''}"


def _range(spread: dict[str, float], fmt: str) -> str:
    return f"{fmt.format(spread['low'])} to {fmt.format(spread['high'])}"


def floor_check(payload: dict[str, Any]) -> list[str]:
    """The proxy against the floor of a Python relay: from the rounds that alternated the
    two (``bench/versus.py``), else from the two rows of an older result file."""
    if not payload.get("versus"):
        rows = _floor_rows(payload)
        return ["Ratios from this run:", "", *rows] if rows else []
    versus = payload["versus"]
    lines = ["Floor and proxy ran side by side, in as many worker processes each, and were "
             "measured in turn, in ABBA order (floor then proxy, then proxy then floor, ...), "
             "so a drift of the machine's speed during the run cancels. Each ratio is the "
             "median of its rounds, with their range; met or not is on the median.", "",
             "| target | median (range over the rounds) | met |", "|---|---|---|"]
    for result in versus:
        rounds = len(result["rounds"])
        for target in _VERSUS_TARGETS:
            spread = result["ratios"][target.ratio]
            lines.append(f"| proxy ({_workers(result['workers'])}): {target.asked} | "
                         f"{target.fmt.format(spread['median'])}{target.unit} "
                         f"({_range(spread, target.fmt)}, {rounds} rounds) "
                         f"| {_yes(target.met(spread['median'], target.bound))} |")
    lines += ["", "The floor's own figures across the same rounds (lowest to highest) show how "
              "far the machine's speed moved meanwhile:", "",
              "| floor | " + " | ".join(label for _, label, _ in _FLOOR_FIGURES) + " |",
              "|---|" + "---:|" * len(_FLOOR_FIGURES)]
    for result in versus:
        lines.append(f"| {_workers(result['workers'])} | " + " | ".join(
            _range(result["floor"][key], fmt) for key, _, fmt in _FLOOR_FIGURES) + " |")
    failed = sum(leg["failed"] for result in versus for r in result["rounds"]
                 for leg in (r["floor"], r["proxy"]))
    if failed:
        lines += ["", f"**wrk counted {failed:,} failed calls** (errors or non-2xx answers) "
                  "in these rounds: their figures are not to be trusted."]
    return lines


def floor_md(payload: dict[str, Any]) -> str:
    """``results/floor.md``: the ratios, the floor's drift, and every round's ratios."""
    source = payload["proxy"]
    lines = ["# Proxy against the floor, in turn", "",
             f"- command: `{payload['command']}`, started {payload['started']}, took "
             f"{payload['seconds']:.0f} s; load average (1/5/15 min) "
             f"{payload['load_average_at_start']} at start, {payload['load_average_at_end']} "
             "at end",
             f"- proxy: `{source['tree']}` at {source['commit']}", "", *floor_check(payload),
             "", "## Each round", ""]
    lines += ["| workers | round | first | "
              + " | ".join(target.heading for target in _VERSUS_TARGETS) + " |",
              "|---:|---:|---|" + "---:|" * len(_VERSUS_TARGETS)]
    for result in payload["versus"]:
        for number, r in enumerate(result["rounds"], 1):
            lines.append(f"| {result['workers']} | {number} | {r['first']} | " + " | ".join(
                target.fmt.format(r["ratios"][target.ratio]) for target in _VERSUS_TARGETS)
                + " |")
    return "\n".join(lines) + "\n"


def _floor_rows(payload: dict[str, Any]) -> list[str]:
    """The proxy against the floor of a Python relay, measured in the same run: the ratios."""
    names = _by_name(payload)
    direct, floor = names.get("direct"), names.get(FLOOR)
    proxies = [t for n, t in names.items()
               if n.startswith("proxy (") and n not in (PROXY_WAIT, PROXY_PASSTHROUGH)]
    if direct is None or floor is None or not proxies:
        return []
    rows = []
    for proxy in proxies:
        # Each against the floor in as many worker processes (else the one-worker floor):
        # two processes on cores the load generator shares each get less than a core, the
        # floor's as much as the proxy's.
        workers = 2 if "2 workers" in proxy["name"] else 1
        base = names.get(FLOOR_2, floor) if workers == 2 else floor
        base_workers = 1 if base is floor else 2
        floor_rps = {r["connections"]: r["rps"] / base_workers for r in base["saturation"]}
        floor_cpu = {int(k): v for k, v in base["cpu_us_per_request"].items()}
        against = "" if base is floor else f" ({base['name']})"
        rps = {r["connections"]: r["rps"] for r in proxy["saturation"]}
        for c in (16, 64):
            if c in rps and floor_rps.get(c):
                ratio = rps[c] / workers / floor_rps[c]
                rows.append(f"| {proxy['name']}: req/s per worker at c={c} ≥ half the floor's"
                            f"{against} | {ratio:.2f} ({rps[c] / workers:,.0f} vs "
                            f"{floor_rps[c]:,.0f}) | {_yes(ratio >= 0.5)} |")
        cpu = {int(k): v for k, v in proxy["cpu_us_per_request"].items()}
        for c in (16, 64):
            if c in cpu and floor_cpu.get(c):
                ratio = cpu[c] / floor_cpu[c]
                rows.append(f"| {proxy['name']}: CPU per call at c={c} at most twice the "
                            f"floor's{against} | {ratio:.2f} ({cpu[c]:,} vs {floor_cpu[c]:,} µs) "
                            f"| {_yes(ratio <= 2)} |")
    proxy = names.get(PROXY)
    if proxy is not None:
        ours = _added(proxy, direct, "p50_ms") or 0.0
        theirs = _added(floor, direct, "p50_ms") or 0.0
        rows.insert(0, f"| proxy (1 worker): added p50 at c=1 ≤ the floor's + 0.15 ms "
                       f"| {ours:.2f} vs {theirs:.2f} ms (+{ours - theirs:.2f}) "
                       f"| {_yes(ours <= theirs + 0.15)} |")
    return ["| target | measured (proxy vs floor) | met |", "|---|---|---|", *rows]


def _settings_cost(payload: dict[str, Any]) -> list[str]:
    """Two settings, each priced by a pair of rows measured one after the other."""
    names = _by_name(payload)
    direct, base = names.get("direct"), names.get(PROXY)
    wait, passthrough = names.get(PROXY_WAIT), names.get(PROXY_PASSTHROUGH)
    if direct is None or base is None or (wait is None and passthrough is None):
        return []
    lines = ["Each setting is priced by two rows of this run, measured one after the other. "
             "One pair of runs on a shared machine: a difference of either sign within its "
             "run-to-run spread (large when the load average above is) is noise, not a cost "
             "or a gain.", ""]
    rows = ["| setting | figure | without | with | cost (with - without) |",
            "|---|---|---:|---:|---:|"]
    if wait is not None:
        lines.append(f"- **`REDIS_MIN_REPLICAS=1`**: `{PROXY_WAIT}` (with) against `{PROXY}` "
                     "(without: `REDIS_MIN_REPLICAS=0`). Its proxy publishes to a primary of "
                     "its own with one replica on this machine (`replicaof`); the replica "
                     "shares the cores, so the cost includes Redis replicating, not only the "
                     f"`WAIT` round trip. {_confirmed(wait)}")
        rows.append(_cost_row("`REDIS_MIN_REPLICAS=1`", "added p50 at c=1, ms",
                              _added(base, direct, "p50_ms"), _added(wait, direct, "p50_ms")))
        rps = [{r["connections"]: r["rps"] for r in t["saturation"]} for t in (base, wait)]
        cpu = [{int(k): v for k, v in t["cpu_us_per_request"].items()} for t in (base, wait)]
        for c in (16, 64):
            rows.append(_cost_row("", f"req/s at c={c}", rps[0].get(c), rps[1].get(c), "{:,.0f}"))
            rows.append(_cost_row("", f"CPU per request at c={c}, µs", cpu[0].get(c),
                                  cpu[1].get(c), "{:,.0f}"))
    if passthrough is not None and passthrough["streaming"] and base["streaming"]:
        lines.append(f"- **`STREAM_USAGE=inject`** (the default): `{PROXY}` (with) against "
                     f"`{PROXY_PASSTHROUGH}` (without), streaming only. The upstream answers "
                     "`include_usage` as the API does (`\"usage\":null` on every chunk, then "
                     "a usage chunk); the injecting proxy asks for it and cuts both from "
                     "what its client receives.")
        bare = direct["streaming"]["chunk_delay_p50_ms"]
        without, with_ = passthrough["streaming"], base["streaming"]
        rows.append(_cost_row("`STREAM_USAGE=inject`", "first chunk p50, ms",
                              without["ttfb_p50_ms"], with_["ttfb_p50_ms"]))
        rows.append(_cost_row("", "added per chunk p50, ms", without["chunk_delay_p50_ms"] - bare,
                              with_["chunk_delay_p50_ms"] - bare))
    return [*lines, "", *rows]


def _confirmed(target: dict[str, Any]) -> str:
    seen = target.get("publishing")
    if not seen:
        return ""
    return (f"In this run it published {seen['published']:,} of {seen['records']:,} records, "
            f"each confirmed by the replica (the primary served {seen['wait_calls']:,} `WAIT`s), "
            f"and spooled {seen['spooled']:,}: the suite fails unless all are confirmed.")


def _cost_row(setting: str, figure: str, without: float | None, with_: float | None,
              fmt: str = "{:.2f}") -> str:
    if without is None or with_ is None:
        return f"| {setting} | {figure} | — | — | — |"
    return (f"| {setting} | {figure} | {fmt.format(without)} | {fmt.format(with_)} | "
            f"{fmt.replace('{:', '{:+').format(with_ - without)} |")


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def write_benchmarks_md(payload: dict[str, Any], results: Path) -> None:
    machine, versions = payload["machine"], payload["versions"]
    shipper = results / "shipper.md"
    kind = "quick smoke run, not figures to quote" if payload["quick"] else "full run"
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/proxy_bench.py`, `bench/shipper_bench.py`); how "
        "each figure is taken is in `bench/README.md`. All on one machine, loopback only: "
        "the load generator, the upstream and the target share the same cores, so absolute "
        "figures are lower than on a dedicated host; compare the rows, not the machines.",
        "",
        f"- command: `{payload['command']}` ({kind}), "
        f"started {payload['started']}, took {payload['seconds']:.0f} s",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}; load average (1/5/15 min) "
        f"{payload['load_average_at_start']} at start, {payload['load_average_at_end']} at end "
        "(other work shared the cores: CPU per request is the steadiest figure)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "- upstream: nginx (one worker) returning a canned chat completion; streaming from "
        "`bench/sse_upstream.py` (chunks stamped with their send time)",
        "",
        "## Proxy against the floor",
        "",
        f"The floor is `bench/floor_relay.py` on uvicorn ({FLOOR!r} below): a raw ASGI "
        "relay with an aiohttp client pool that checks nothing and keeps no record, the "
        "least a Python relay on this stack costs.",
        "",
        *floor_check(payload),
        "",
        "## Proxy: targets",
        "",
        *_targets_check(payload),
        "",
        "## Proxy: what two settings cost",
        "",
        *_settings_cost(payload),
        "",
        "## Proxy: results",
        "",
        "![latency percentiles per target](bench/results/proxy_latency.png)",
        "",
        proxy_tables(payload),
    ]
    memory = results / "proxy_memory.md"
    if memory.exists():
        lines += ["## Proxy memory, 1 GiB each way", "", "From `bench/results/proxy_memory.md` "
                  "(`bench/proxy_memory.py`; `python -m bench --suite memory` alone):", "",
                  memory.read_text().replace("\n# ", "\n### ").replace("\n## ", "\n### ")
                  .removeprefix("# ").strip(), ""]
    if shipper.exists():
        lines += ["## Shipper", "", "From `bench/results/shipper.md` (`make bench` runs it "
                  "too; `python -m bench --suite shipper` alone):", "",
                  shipper.read_text().replace("\n# ", "\n### ").replace("\n## ", "\n### ")]
    (REPO / "BENCHMARKS.md").write_text("\n".join(lines).rstrip() + "\n")
