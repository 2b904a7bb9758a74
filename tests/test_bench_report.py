"""BENCHMARKS.md's "Proxy against the floor": the alternating rounds when a run has them,
else the floor's and the proxy's rows of an older result file."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from bench.report import floor_check, floor_md
from bench.targets import FLOOR, PROXY
from bench.versus import Leg, Round, ratios, summarise


def _leg(p50_ms: float, rps: float, cpu_us: int) -> Leg:
    return Leg(p50_ms, {16: rps, 64: rps}, {16: cpu_us, 64: cpu_us}, failed=0)


def _versus(workers: int, cpu_scale: float) -> dict[str, Any]:
    pairs = [  # (floor, proxy): added p50 +0.10/+0.20/+0.12/+0.08, req/s 0.5/0.4/0.7/0.6
        (_leg(0.20, 6000, 150), _leg(0.30, 3000, round(270 * cpu_scale))),
        (_leg(0.25, 5000, 160), _leg(0.45, 2000, round(400 * cpu_scale))),
        (_leg(0.20, 6000, 150), _leg(0.32, 4200, round(285 * cpu_scale))),
        (_leg(0.30, 4000, 200), _leg(0.38, 2400, round(340 * cpu_scale))),
    ]
    rounds = [Round("floor" if number % 2 == 0 else "proxy", floor, proxy, ratios(floor, proxy))
              for number, (floor, proxy) in enumerate(pairs)]
    # As read back from results/floor.json or proxy.json.
    read_back: dict[str, Any] = json.loads(json.dumps(asdict(summarise(workers, 3.0, rounds))))
    return read_back


def test_the_rounds_give_medians_ranges_and_met_on_the_median() -> None:
    payload = {"versus": [_versus(1, cpu_scale=1.0), _versus(2, cpu_scale=1.2)]}

    text = "\n".join(floor_check(payload))

    assert "ABBA order" in text
    assert ("| proxy (1 worker): added p50 at c=1 ≤ the floor's + 0.15 ms | +0.11 ms "
            "(+0.08 to +0.20, 4 rounds) | yes |") in text
    assert ("| proxy (1 worker): req/s per worker at c=64 ≥ half the floor's | 0.55 "
            "(0.40 to 0.70, 4 rounds) | yes |") in text
    assert ("| proxy (1 worker): CPU per call at c=16 at most twice the floor's | 1.85 "
            "(1.70 to 2.50, 4 rounds) | yes |") in text
    assert ("| proxy (2 workers): CPU per call at c=16 at most twice the floor's | 2.22 "
            "(2.04 to 3.00, 4 rounds) | **no** |") in text
    # The floor's drift across the rounds, lowest to highest.
    assert "| 1 worker | 0.20 to 0.30 | 4,000 to 6,000 | 4,000 to 6,000 | 150 to 200 |" in text
    assert "failed calls" not in text


def test_floor_md_lists_every_round() -> None:
    payload = {"command": "python -m bench --suite floor", "started": "2025-01-01T00:00:00+00:00",
               "seconds": 60.0, "load_average_at_start": [1.0, 1.0, 1.0],
               "load_average_at_end": [1.0, 1.0, 1.0],
               "proxy": {"tree": "/work/wt/x", "commit": "abc1234"},
               "versus": [_versus(1, cpu_scale=1.0)]}

    text = floor_md(payload)

    assert "`/work/wt/x` at abc1234" in text
    assert "| 1 | 2 | proxy | +0.20 | 0.40 | 0.40 | 2.50 | 2.50 |" in text


def _row(name: str, p50_ms: float, rps: float, cpu_us: int) -> dict[str, Any]:
    saturation = [{"connections": c, "rps": rps} for c in (16, 64)]
    return {"name": name, "one_connection": {"p50_ms": p50_ms}, "saturation": saturation,
            "cpu_us_per_request": {"16": cpu_us, "64": cpu_us}}


def test_without_rounds_the_floor_and_proxy_rows_are_compared() -> None:
    payload = {"targets": [_row("direct", 0.05, 20000, 0), _row(FLOOR, 0.20, 6000, 150),
                           _row(PROXY, 0.30, 3000, 330)]}

    text = "\n".join(floor_check(payload))

    assert "ABBA" not in text
    assert ("| proxy (1 worker): added p50 at c=1 ≤ the floor's + 0.15 ms | 0.25 vs 0.15 ms "
            "(+0.10) | yes |") in text
    assert ("| proxy (1 worker): req/s per worker at c=16 ≥ half the floor's | 0.50 "
            "(3,000 vs 6,000) | yes |") in text
    assert ("| proxy (1 worker): CPU per call at c=64 at most twice the floor's | 2.20 "
            "(330 vs 150 µs) | **no** |") in text
