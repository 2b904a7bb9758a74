"""The processes the proxy benchmark compares, each started on a free loopback port.

Every target is reached at a JSON URL (the canned completion, served by nginx) and a
streaming URL (the paced SSE upstream); ``pid`` is the process whose tree's RSS counts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent
LITELLM_VENV = REPO / "bench" / ".venvs" / "litellm"
LITELLM_VERSION = "1.108.7"
JSON_MODEL = "bench-model"
STREAM_MODEL = "bench-stream"
LONG_STREAM_MODEL = "bench-stream-long"
_START_TIMEOUT_S = 120.0
FLOOR = "floor (uvicorn relay)"
"""The floor's row: ``bench/floor_relay.py``, which the proxy's own cost is measured against."""
FLOOR_2 = "floor (uvicorn relay, 2 workers)"
"""The floor in two worker processes: what ``proxy (2 workers)`` is measured against."""
PROXY = "proxy (1 worker)"
"""The proxy with default settings: ``REDIS_MIN_REPLICAS=0``, ``STREAM_USAGE=inject``."""
PROXY_WAIT = "proxy (1 worker, REDIS_MIN_REPLICAS=1)"
"""As ``PROXY``, publishing to a primary with one local replica and ``WAIT``-ing for it."""
PROXY_PASSTHROUGH = "proxy (1 worker, STREAM_USAGE=passthrough)"
"""As ``PROXY`` without asking for usage on streams: streaming figures only."""
CLIENT_KEY = "sk-bench-" + "5f0c" * 16
"""What every client sends; LiteLLM refuses to start without a master key, this one."""


def chat_body(model: str) -> str:
    """The small chat completion every load generator posts."""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "Say hi"}]})


@dataclass
class Target:
    """A running thing the load generator talks to."""

    name: str
    json_url: str
    stream_url: str
    pid: int | None
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def wait_until_answering(url: str, model: str, timeout_s: float = _START_TIMEOUT_S) -> None:
    """Until a POST of a chat completion returns 200 (start-up can take a while)."""
    deadline = time.monotonic() + timeout_s
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.post(url, json=body, timeout=5,
                                  headers={"authorization": f"Bearer {CLIENT_KEY}"})
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer in {timeout_s}s: {last}")


def start_proxy(name: str, upstream: str, redis_url: str, workers: int, logdir: Path,
                extra_env: dict[str, str] | None = None,
                wrapper: Sequence[str] = ()) -> Target:
    """``python -m proxy`` with default settings, except the upstream and Redis; run
    under ``wrapper`` (a command line that ends where the program's starts) if given."""
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": upstream,
        "OPENAI_API_KEY": "sk-bench-upstream",
        "REDIS_URL": redis_url,
        "REDIS_STREAM": "bench:proxy",
        "PROXY_HOST": "127.0.0.1",
        "PROXY_PORT": str(port),
        "PROXY_WORKERS": str(workers),
        "SPOOL_DIR": str(logdir / f"spool-{name}"),
        "MAX_REQUEST_BYTES": str(4 * 1024**3),
        **(extra_env or {}),
    }
    log = (logdir / f"{name}.log").open("wb")
    process = subprocess.Popen([*wrapper, sys.executable, "-m", "proxy"], env=env, cwd=logdir,
                               stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, timeout_s=_START_TIMEOUT_S if wrapper else 30)
    base = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Target(name, base, base, process.pid, process)


def start_floor(upstream_base: str, logdir: Path, workers: int = 1,
                wrapper: Sequence[str] = ()) -> Target:
    """``bench/floor_relay.py`` on uvicorn: the least a Python relay on this stack costs.

    It reads each response whole before answering, so it has no streaming figures.
    """
    port = free_port()
    log = (logdir / f"floor-w{workers}.log").open("wb")
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "bench.floor_relay", "uvicorn", str(port),
         upstream_base, str(workers)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    wait_for_port(port, timeout_s=_START_TIMEOUT_S if wrapper else 30)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Target(FLOOR if workers == 1 else FLOOR_2, url, url, process.pid, process)


def litellm_available() -> str | None:
    """Why LiteLLM cannot run here, or None when its venv is installed."""
    if not (LITELLM_VENV / "bin" / "litellm").exists():
        return (f"no LiteLLM venv at {LITELLM_VENV.relative_to(REPO)} "
                "(`make bench` creates it with scripts/ensure-tools.sh bench)")
    return None


def litellm_config(json_upstream: str, stream_upstream: str) -> str:
    entries = [(JSON_MODEL, json_upstream), (STREAM_MODEL, stream_upstream),
               (LONG_STREAM_MODEL, stream_upstream)]
    lines = ["model_list:"]
    for model, base in entries:
        lines += [f"  - model_name: {model}", "    litellm_params:",
                  f"      model: openai/{model}", f"      api_base: {base}",
                  "      api_key: sk-bench-upstream"]
    lines += ["litellm_settings:", "  telemetry: false", "  drop_params: true"]
    return "\n".join(lines) + "\n"


def start_litellm(json_upstream: str, stream_upstream: str, logdir: Path,
                  workers: int = 1) -> Target:
    """LiteLLM's proxy, one worker by default, no database, no master key, no callbacks."""
    port = free_port()
    config = logdir / "litellm.yaml"
    config.write_text(litellm_config(json_upstream, stream_upstream))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_"))},
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "DISABLE_ADMIN_UI": "True",
        "LITELLM_MASTER_KEY": CLIENT_KEY,
    }
    log = (logdir / "litellm.log").open("wb")
    binary = LITELLM_VENV / "bin" / "litellm"
    process = subprocess.Popen(
        [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", str(workers)],
        env=env, cwd=logdir, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        wait_for_port(port, timeout_s=_START_TIMEOUT_S)
        wait_until_answering(url, JSON_MODEL)
    except (TimeoutError, RuntimeError):
        process.kill()
        process.wait(timeout=10)
        raise
    return Target("LiteLLM", url, url, process.pid, process)


def start_sse_upstream(logdir: Path) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    log = (logdir / "sse_upstream.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bench.sse_upstream", "--port", str(port)],
                               cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, timeout_s=30)
    return port, process


def litellm_version() -> str:
    pip = LITELLM_VENV / "bin" / "pip"
    if not pip.exists() or shutil.which(str(pip)) is None:
        return "not installed"
    done = subprocess.run([str(pip), "show", "litellm"], capture_output=True, text=True,
                          check=False)
    for line in done.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"
