"""The proxy against the floor, measured in turn in one run: issue 24's ratios.

The floor (``bench/floor_relay.py``) and the proxy (default settings) run side by side
in as many worker processes each; the idle one costs the other nothing. After a warm-up
of both, each round measures wrk at one connection (p50), then at 16 and at 64 (req/s,
and the CPU per call of the target's process tree), each figure of one target right
after the same figure of the other, in ABBA order (floor first, then proxy first, ...),
so a drift of the machine's speed that is linear over two runs cancels, and the runs a
ratio compares are seconds apart. Each round sets the proxy's figures against the
floor's; the result keeps every round, the median and range of each ratio over the
rounds, and the range of the floor's own figures, which shows how far the machine's speed
moved meanwhile.

``python -m bench --suite floor`` runs this alone (``run_suite``: ``results/floor.json``,
``floor.md``); the proxy suite runs it for one and two workers after its rows.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.rig import Rig, RunClock, Stoppers, start_rig, stop_all
from bench.targets import JSON_MODEL, Target, start_floor, start_proxy, wait_until_answering
from bench.wrk import run_wrk, run_wrk_costed

RESULTS = Path(__file__).resolve().parent / "results"
SATURATION = (16, 64)
FLOOR, PROXY = "floor", "proxy"


@dataclass(frozen=True)
class Plan:
    rounds: int
    duration_s: float
    """Of each wrk run."""

    @classmethod
    def of(cls, quick: bool, rounds: int | None = None) -> Plan:
        default = cls(2, 1.0) if quick else cls(6, 3.0)
        return default if rounds is None else cls(rounds, default.duration_s)


@dataclass(frozen=True)
class Leg:
    """One target's figures in one round; req/s of all its workers."""

    p50_ms: float
    rps: dict[int, float]
    cpu_us_per_call: dict[int, int]
    failed: int
    """Calls wrk counted as errors or non-2xx answers: none in a sound run."""

    def figures(self) -> dict[str, float]:
        return {"p50_ms": self.p50_ms,
                **{f"rps_c{c}": self.rps[c] for c in SATURATION},
                **{f"cpu_us_c{c}": self.cpu_us_per_call[c] for c in SATURATION}}


@dataclass(frozen=True)
class Round:
    first: str
    floor: Leg
    proxy: Leg
    ratios: dict[str, float]


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Versus:
    workers: int
    duration_s: float
    rounds: list[Round]
    ratios: dict[str, Spread]
    """Over the rounds: ``added_p50_ms`` (proxy minus floor at one connection), then per
    connections ``rps_cN`` and ``cpu_cN``, the proxy's over the floor's."""
    floor: dict[str, Spread]
    """The floor's own figures over the rounds (``Leg.figures``): the machine's drift."""


def ratios(floor: Leg, proxy: Leg) -> dict[str, float]:
    """One round's proxy against its floor; with as many workers each, req/s per worker
    compare as the totals do."""
    found = {"added_p50_ms": round(proxy.p50_ms - floor.p50_ms, 3)}
    for c in SATURATION:
        found[f"rps_c{c}"] = round(proxy.rps[c] / floor.rps[c], 3)
        found[f"cpu_c{c}"] = round(proxy.cpu_us_per_call[c] / floor.cpu_us_per_call[c], 3)
    return found


def summarise(workers: int, duration_s: float, rounds: list[Round]) -> Versus:
    figures = [r.floor.figures() for r in rounds]
    return Versus(workers, duration_s, rounds,
                  {key: Spread.of([r.ratios[key] for r in rounds]) for key in rounds[0].ratios},
                  {key: Spread.of([f[key] for f in figures]) for key in figures[0]})


def measure_round(targets: dict[str, Target], order: tuple[str, str], workdir: Path,
                  duration_s: float) -> dict[str, Leg]:
    """Each figure of one round, the two targets back to back in ``order``: one
    connection's p50, then each saturation's req/s and CPU per call. Measured figure by
    figure rather than target by target, the two runs a ratio compares are seconds apart,
    not a whole leg."""
    p50: dict[str, float] = {}
    rps: dict[str, dict[int, float]] = {name: {} for name in order}
    cpu_us: dict[str, dict[int, int]] = {name: {} for name in order}
    failed = dict.fromkeys(order, 0)
    for name in order:
        one = run_wrk(targets[name].json_url, JSON_MODEL, workdir, connections=1,
                      duration_s=duration_s)
        p50[name] = one.p50_ms
        failed[name] += one.errors + one.non2xx
    for c in SATURATION:
        for name in order:
            target = targets[name]
            run, cpu_us_per_call = run_wrk_costed(target.json_url, JSON_MODEL, workdir,
                                                  target.pid, connections=c,
                                                  duration_s=duration_s)
            if cpu_us_per_call is None:
                raise RuntimeError(f"{target.name}: no call answered at c={c}")
            rps[name][c], cpu_us[name][c] = run.rps, cpu_us_per_call
            failed[name] += run.errors + run.non2xx
    return {name: Leg(p50[name], rps[name], cpu_us[name], failed[name]) for name in order}


def measure(workers: int, rig: Rig, workdir: Path, plan: Plan,
            proxy_env: dict[str, str] | None = None) -> Versus:
    """Floor and proxy side by side in ``workers`` processes each, ``plan.rounds`` rounds."""
    with ExitStack() as stack:
        targets = {FLOOR: start_floor(rig.json_upstream.removesuffix("/v1"), workdir,
                                      workers=workers)}
        stack.callback(targets[FLOOR].stop)
        targets[PROXY] = start_proxy(f"versus-w{workers}", rig.json_upstream, rig.redis_url,
                                     workers, workdir, proxy_env)
        stack.callback(targets[PROXY].stop)
        for target in targets.values():
            wait_until_answering(target.json_url, JSON_MODEL)
            # At the most connections measured: every upstream connection either opens is
            # open before the first round (a cold first leg cost the proxy a third more).
            run_wrk(target.json_url, JSON_MODEL, workdir, connections=max(SATURATION),
                    duration_s=2.0)
        rounds = []
        for number in range(plan.rounds):
            order = (FLOOR, PROXY) if number % 2 == 0 else (PROXY, FLOOR)
            print(f"floor vs proxy, {workers} worker(s): round {number + 1} of {plan.rounds}",
                  file=sys.stderr, flush=True)
            legs = measure_round(targets, order, workdir, plan.duration_s)
            rounds.append(Round(order[0], legs[FLOOR], legs[PROXY],
                                ratios(legs[FLOOR], legs[PROXY])))
    return summarise(workers, plan.duration_s, rounds)


def proxy_env(pythonpath: Path | None) -> dict[str, str]:
    """The proxy's environment for a source tree of its own, first on ``PYTHONPATH``."""
    if pythonpath is None:
        return {}
    paths = [str(pythonpath.resolve()), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def proxy_source(env: dict[str, str], workdir: Path) -> dict[str, str]:
    """Which tree ``python -m proxy`` imports with ``env``, and its commit."""
    done = subprocess.run([sys.executable, "-c", "import proxy; print(proxy.__file__)"],
                          env={**os.environ, **env}, cwd=workdir, capture_output=True,
                          text=True, check=True)
    tree = Path(done.stdout.strip()).parent.parent
    commit = subprocess.run(["git", "-C", str(tree), "describe", "--always", "--dirty"],
                            capture_output=True, text=True, check=False)
    return {"tree": str(tree), "commit": commit.stdout.strip() or "unknown"}


def run_suite(*, plan: Plan, workers: Sequence[int], command: str,
              proxy_pythonpath: Path | None = None) -> dict[str, Any]:
    """The measurement alone, on its own Redis and upstream; writes ``results/floor.*``."""
    clock = RunClock(command)
    env = proxy_env(proxy_pythonpath)
    with tempfile.TemporaryDirectory(prefix="floor-bench-") as tmp:
        workdir = Path(tmp)
        source = proxy_source(env, workdir)
        stoppers: Stoppers = []
        try:
            rig = start_rig(workdir, stoppers)
            results = [measure(count, rig, workdir, plan, env) for count in workers]
        finally:
            stop_all(stoppers)
    payload = {
        **clock.fields(),
        "proxy": source,
        "versus": [asdict(result) for result in results],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "floor.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / "floor.md").write_text(report.floor_md(payload))
    return payload
