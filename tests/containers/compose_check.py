"""`make compose-check`: the compose stack on a real Docker engine, through CONTAINER.md's flows.

When ``docker info`` answers, this builds the images, starts the stack as its own compose
project (``olp-compose-check``, with ``COMPOSE_FILE`` honoured) and runs, calling through the
load balancer with the official SDK:

1. up, and a few calls;
2. ``--scale proxy=3 --scale shipper=2`` under load; ``scripts/rolling-restart.sh`` under
   load; the dropped-records check on every replica (``exec --index N``), and a key created
   and listed with ``exec``;
3. ``--scale proxy=1 --scale shipper=1`` under load;
4. Redis stopped for 10 s under load;
5. a stopped proxy's spool: Redis down, calls spooled, the proxies stopped, then
   ``shipper replay --delete`` over the spool volume;
6. ``down`` and ``up`` (volumes kept), and the explorer's report over the files.

Then it asserts 0 failed calls, and that every answered call's record id is in the files
exactly once (0 lost, 0 doubled). Only the upstream differs from production: a small
stand-in on the compose network (``compose_upstream.py``), since containers here may have
no way out. The files go to a temporary folder, never to the checkout's ``logs/``. Without
an engine it says so and exits 0. ``down -v`` at the end, whatever happened.
"""

from __future__ import annotations

import collections
import csv
import datetime
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

REPO = Path(__file__).resolve().parents[2]
PROJECT = "olp-compose-check"


def engine_problem() -> str | None:
    """Why no engine can be used, or None when ``docker info`` answers."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 20 s"
    if info.returncode != 0:
        lines = [line for line in info.stderr.splitlines() if line.strip()]
        return next((line for line in lines if "connect" in line.lower()),
                    lines[0] if lines else "docker info failed")
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(0.5)


class Stack:
    """The project's compose files plus an override: the stand-in upstream, a temporary logs
    folder, free host ports."""

    def __init__(self, workdir: Path) -> None:
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True)
        self.port = _free_port()
        self.stats_port = _free_port()
        files = os.environ.get("COMPOSE_FILE", "docker-compose.yml").split(os.pathsep)
        override = workdir / "compose.check.yml"
        override.write_text(self._override())
        self.files = [str(REPO / name) for name in files] + [str(override)]
        self.env = {
            **os.environ,
            "PROXY_BIND": "127.0.0.1",
            "PROXY_HOST_PORT": str(self.port),
            "LB_STATS_HOST_PORT": str(self.stats_port),
        }
        self.env.pop("COMPOSE_FILE", None)
        if os.getuid() != 0:  # the files stay removable by whoever runs the check
            self.env.update(APP_UID=str(os.getuid()), APP_GID=str(os.getgid()))

    def _override(self) -> str:
        upstream = REPO / "tests" / "containers" / "compose_upstream.py"
        logs = f"{self.logs}:/data/logs"
        return json.dumps({"services": {
            "upstream": {
                "image": "openai-log-proxy/proxy:latest",
                "command": ["python", "/check/upstream.py"],
                "volumes": [f"{upstream}:/check/upstream.py:ro"],
                "init": True,
                "healthcheck": {"disable": True},  # the image's asks the proxy's /ready
            },
            "proxy": {
                "environment": {"OPENAI_BASE_URL": "http://upstream:9000/v1",
                                "OPENAI_API_KEY": "sk-compose-check", "AUTH_MODE": "none"},
                "depends_on": {"upstream": {"condition": "service_started"}},
            },
            "volumes-init": {"volumes": [logs]},
            "shipper": {"volumes": [logs]},
            "explorer": {"volumes": [f"{logs}:ro"]},
        }}, indent=2)

    def compose(self, *args: str, timeout_s: float = 180) -> str:
        """``docker compose ARGS``; its output, or an error with it."""
        flags = [arg for name in self.files for arg in ("-f", name)]
        result = subprocess.run(
            ["docker", "compose", "-p", PROJECT, "--project-directory", str(REPO), *flags,
             *args],
            capture_output=True, text=True, env=self.env, timeout=timeout_s,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)}: exit {result.returncode}\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up_replicas(self) -> int:
        """Proxy replicas the load balancer has UP, from its stats page."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
        return sum(1 for row in rows if row["pxname"] == "proxies"
                   and row["svname"] not in ("BACKEND", "FRONTEND")
                   and row["status"].startswith("UP"))

    def wait_serving(self, replicas: int) -> None:
        _wait_until(lambda: httpx.get(f"{self.url}/ready", timeout=5).status_code == 200,
                    120, "the entry point ready")
        _wait_until(lambda: self.up_replicas() == replicas, 60, f"{replicas} replicas UP")


class Calls:
    """Chat calls through the entry point: every answer's record id, every failure."""

    def __init__(self, base_url: str) -> None:
        self.client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused",
                                    max_retries=0, timeout=60)
        self.ids: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def one(self) -> None:
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            outcome, failed = raw.headers["x-proxy-record-id"], False
        except openai.OpenAIError as exc:
            when = datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S.%f")[:-3]
            outcome, failed = f"{when} {exc!r} (cause: {exc.__cause__!r})", True
        with self._lock:
            (self.failures if failed else self.ids).append(outcome)

    @contextmanager
    def under_load(self, clients: int = 3) -> Iterator[None]:
        """Clients calling without pause while the block runs, and 2 s after it."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.one()
                time.sleep(0.02)

        threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        try:
            yield
            time.sleep(2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=90)


def _landed(logs: Path) -> collections.Counter[str]:
    ids: collections.Counter[str] = collections.Counter()
    for path in logs.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            ids[json.loads(line)["id"]] += 1
    return ids


def _step(name: str, calls: Calls, action: Callable[[], None]) -> None:
    before_ok, before_failed = len(calls.ids), len(calls.failures)
    started = time.monotonic()
    action()
    ok = len(calls.ids) - before_ok
    failed = calls.failures[before_failed:]
    print(f"compose-check: {name}: {ok} calls answered, {len(failed)} failed "
          f"({time.monotonic() - started:.0f} s)", flush=True)
    if failed:
        raise AssertionError(f"{name}: {len(failed)} failed calls, e.g. {failed[:3]}")


def run_flows(stack: Stack) -> None:
    """CONTAINER.md's flows, in order; an AssertionError names the first that broke."""
    calls = Calls(stack.url)

    def up() -> None:
        stack.compose("build", "proxy", "shipper", timeout_s=1200)
        stack.compose("up", "-d", "--scale", "proxy=1", "--scale", "shipper=1",
                      timeout_s=300)
        stack.wait_serving(1)
        for _ in range(20):
            calls.one()

    def scale(proxies: int, shippers: int) -> Callable[[], None]:
        def action() -> None:
            with calls.under_load():
                stack.compose("up", "-d", "--no-recreate", "--scale", f"proxy={proxies}",
                              "--scale", f"shipper={shippers}", timeout_s=300)
                stack.wait_serving(proxies)
        return action

    def rolling_restart() -> None:
        with calls.under_load():
            script = REPO / "scripts" / "rolling-restart.sh"
            result = subprocess.run(
                [str(script), "-p", PROJECT, "--project-directory", str(REPO),
                 *(arg for name in stack.files for arg in ("-f", name))],
                env=stack.env, capture_output=True, text=True, timeout=600,
            )
            assert result.returncode == 0, f"rolling-restart.sh:\n{result.stdout}{result.stderr}"
            stack.wait_serving(3)

    def every_replica_and_keys() -> None:
        metrics = ("import urllib.request as r; "
                   "print(r.urlopen('http://127.0.0.1:8000/metrics').read().decode())")
        # CONTAINER.md's loop: the indexes of the running replicas (gaps after a restart).
        names = stack.compose("ps", "proxy", "--format", "{{.Name}}").split()
        assert len(names) == 3, names
        for index in (name.rpartition("-")[2] for name in names):
            text = stack.compose("exec", "--index", index, "proxy", "python", "-c", metrics)
            assert "proxy_records_dropped_total 0.0" in text, f"replica {index} dropped"
        created = stack.compose("exec", "proxy", "python", "-m", "proxy", "keys", "create",
                                "--user", "compose-check")
        assert created.strip().splitlines()[-1], "no key printed"
        assert "compose-check" in stack.compose("exec", "proxy", "python", "-m", "proxy",
                                                "keys", "list")

    def redis_outage() -> None:
        with calls.under_load():
            stack.compose("stop", "redis")
            time.sleep(10)
            stack.compose("start", "redis")
            time.sleep(3)

    def replay_spool() -> None:
        stack.compose("stop", "redis")
        for _ in range(20):
            calls.one()  # spooled: Redis is away
        stack.compose("stop", "proxy", timeout_s=120)
        stack.compose("start", "redis")
        _wait_until(lambda: "PONG" in stack.compose("exec", "redis", "redis-cli", "ping"),
                    60, "Redis back")
        out = stack.compose("run", "--rm", "--no-deps", "-v", f"{PROJECT}_spool:/replay",
                            "shipper", "python", "-m", "shipper", "replay", "--spool",
                            "/replay", "--delete", timeout_s=300)
        summary = dict(line.rsplit(None, 1) for line in out.splitlines()
                       if line.startswith("records"))
        print(f"compose-check: replay: {summary}", flush=True)
        # The spooled calls reached the files through the replay, not some other way.
        assert int(summary.get("records shipped", "0")) >= 1, out
        stack.compose("start", "proxy", timeout_s=120)
        stack.wait_serving(1)

    def down_up() -> None:
        stack.compose("down", timeout_s=180)
        stack.compose("up", "-d", timeout_s=300)
        stack.wait_serving(1)
        for _ in range(10):
            calls.one()

    _step("up", calls, up)
    _step("scale to proxy=3 shipper=2 under load", calls, scale(3, 2))
    _step("rolling restart of 3 replicas under load", calls, rolling_restart)
    _step("exec --index N on every replica, keys create/list", calls, every_replica_and_keys)
    _step("scale to proxy=1 shipper=1 under load", calls, scale(1, 1))
    _step("Redis stopped 10 s under load", calls, redis_outage)
    _step("replay of a stopped proxy's spool", calls, replay_spool)
    _step("down and up", calls, down_up)

    answered = set(calls.ids)
    assert len(answered) == len(calls.ids), "a record id was given to two calls"
    _wait_until(lambda: answered <= set(_landed(stack.logs)), 120,
                f"{len(answered - set(_landed(stack.logs)))} records not in the files")
    landed = _landed(stack.logs)
    doubled = [record_id for record_id, count in landed.items() if count > 1]
    unknown = set(landed) - answered
    assert not doubled, f"{len(doubled)} records written twice, e.g. {doubled[:3]}"
    assert not unknown, f"{len(unknown)} records no call answered, e.g. {sorted(unknown)[:3]}"
    print(f"compose-check: {len(answered)} calls, 0 failed; {len(landed)} records in the "
          "files, 0 lost, 0 doubled", flush=True)

    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    report = stack.compose("--profile", "explorer", "run", "--rm", "--no-deps", "explorer",
                           "python", "-m", "explorer", "report", "--from", today, "--to",
                           today, "--format", "json", timeout_s=180)
    rows = json.loads(report)
    assert sum(row["calls"] for row in rows) == len(answered), rows
    print(f"compose-check: explorer report: {len(rows)} row(s), "
          f"{sum(row['calls'] for row in rows)} calls", flush=True)


def main() -> int:
    problem = engine_problem()
    if problem is not None:
        print(f"compose-check: no Docker engine answers ({problem}); nothing checked")
        return 0
    with tempfile.TemporaryDirectory(prefix="compose-check-") as workdir:
        stack = Stack(Path(workdir))
        try:
            run_flows(stack)
        except AssertionError as exc:
            print(f"compose-check: FAILED: {exc}", file=sys.stderr)
            saved = Path(tempfile.gettempdir()) / f"{PROJECT}.log"
            try:
                saved.write_text(stack.compose("logs", "--timestamps", timeout_s=120))
                print(f"compose-check: the services' logs are in {saved}", file=sys.stderr)
            except AssertionError as logs_exc:
                print(logs_exc, file=sys.stderr)
            return 1
        finally:
            try:
                stack.compose("--profile", "explorer", "down", "-v", "--remove-orphans",
                              timeout_s=180)
            except AssertionError as exc:
                print(f"compose-check: down -v failed: {exc}", file=sys.stderr)
    print("compose-check: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
