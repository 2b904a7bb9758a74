"""The container files, checked without a Docker engine: hadolint, ``docker compose config``,
and the promises of CONTAINER.md that are visible in the files themselves."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.containers.specs import (
    REPO,
    Dockerfile,
    compose_binary,
    compose_config,
    hadolint_binary,
    run_compose,
    service,
)

DOCKERFILES = ["Dockerfile.proxy", "Dockerfile.shipper"]
DEFAULT_SERVICES = {"redis", "volumes-init", "proxy", "lb", "shipper"}


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose-project")


@pytest.fixture(scope="module")
def config(project_dir: Path) -> dict[str, Any]:
    return compose_config(project_dir)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing(name: str) -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", name], cwd=REPO, capture_output=True, text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("profiles", [(), ("azurite",), ("explorer",), ("azurite", "explorer")])
def test_compose_config_is_valid(project_dir: Path, profiles: tuple[str, ...]) -> None:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = run_compose(*flags, "config", "--quiet", project_dir=project_dir)
    assert result.returncode == 0, result.stderr


def test_profiles_add_their_services_only(project_dir: Path, config: dict[str, Any]) -> None:
    assert set(config["services"]) == DEFAULT_SERVICES
    azurite = compose_config(project_dir, "azurite")
    assert set(azurite["services"]) == DEFAULT_SERVICES | {"azurite", "shipper-azurite"}
    explorer = compose_config(project_dir, "explorer")
    assert set(explorer["services"]) == DEFAULT_SERVICES | {"explorer"}


@pytest.mark.parametrize("name", ["proxy", "shipper"])
def test_replicas_can_scale(config: dict[str, Any], name: str) -> None:
    spec = config["services"][name]
    assert "container_name" not in spec
    assert not spec.get("ports"), "a fixed host port allows one replica only"


def test_one_entry_point_on_port_8000_runs_the_checked_config(config: dict[str, Any]) -> None:
    lb = config["services"]["lb"]
    assert {(port["published"], port["target"]) for port in lb["ports"]} >= {("8000", 8000)}
    mounts = {volume["target"]: volume["source"] for volume in lb["volumes"]}
    assert Path(mounts["/usr/local/etc/haproxy/haproxy.cfg"]).relative_to(
        config["services"]["proxy"]["build"]["context"]
    ) == Path("deploy/haproxy.cfg")


def test_replicas_share_one_spool_volume_and_logs_reach_the_host(config: dict[str, Any]) -> None:
    proxy_mounts = {v["target"]: v for v in config["services"]["proxy"]["volumes"]}
    assert proxy_mounts["/data/spool"]["type"] == "volume"
    assert proxy_mounts["/data/spool"]["source"] in config["volumes"]
    logs = {v["target"]: v for v in config["services"]["shipper"]["volumes"]}["/data/logs"]
    assert logs["type"] == "bind"


def test_every_service_restarts_and_waits_for_a_healthy_redis(config: dict[str, Any]) -> None:
    for name in ("proxy", "shipper"):
        spec = config["services"][name]
        assert spec["restart"] == "unless-stopped"
        assert spec["depends_on"]["redis"]["condition"] == "service_healthy"


def test_dot_env_configures_the_services_but_not_how_they_find_each_other(
    tmp_path: Path,
) -> None:
    example = (REPO / ".env.example").read_text()
    (tmp_path / ".env").write_text(
        f"{example}\nOPENAI_BASE_URL=http://upstream.example/v1\nAPP_UID=1234\n"
    )
    config = compose_config(tmp_path)
    for name in ("proxy", "shipper"):
        spec = config["services"][name]
        assert spec["environment"]["OPENAI_BASE_URL"] == "http://upstream.example/v1"
        assert spec["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert spec["user"] == "1234:10001"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_images_run_as_non_root_with_a_healthcheck_and_a_graceful_stop(name: str) -> None:
    dockerfile = Dockerfile.read(REPO / name)
    assert all(image.startswith("python:3.11-slim") for image in dockerfile.base_images)
    assert dockerfile.user and dockerfile.user.split(":")[0] not in ("0", "root")
    assert dockerfile.healthcheck and dockerfile.cmd[0] == "python"
    assert dockerfile.stop_signal == "SIGTERM"
    for source in dockerfile.copies:
        assert (REPO / source).exists(), f"{name} copies {source}, which is not in the repo"
    assert not any(".env" in key for key in dockerfile.env), "settings come at run time"


def test_docker_stop_waits_longer_than_the_services_drain(config: dict[str, Any]) -> None:
    # uvicorn's graceful shutdown is 30 s, the shipper's SHIPPER_SHUTDOWN_TIMEOUT_S 20 s.
    assert service(config, "proxy").stop_grace_s > 30
    assert service(config, "shipper").stop_grace_s > 20


def test_the_build_context_leaves_secrets_and_local_state_out() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "an allow-list: everything is left out unless named"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert not allowed & {".env", "logs", "spool", ".venv", ".tools", "tests"}


def test_volumes_init_hands_the_mounted_folders_to_the_images_user(
    config: dict[str, Any],
) -> None:
    init = config["services"]["volumes-init"]
    owner, *folders = init["command"][1:]
    assert init["command"][0] == "chown"
    assert set(folders) == {volume["target"] for volume in init["volumes"]}
    for name in DOCKERFILES:
        assert Dockerfile.read(REPO / name).user == owner, "APP_UID's default is the image's"
    for name in ("proxy", "shipper"):
        spec = config["services"][name]
        assert spec["user"] == owner
        assert {v["target"] for v in spec["volumes"]} <= set(folders)
        assert spec["depends_on"]["volumes-init"]["condition"] == (
            "service_completed_successfully"
        )


def test_the_explorer_reads_the_logs_but_cannot_change_them(project_dir: Path) -> None:
    explorer = compose_config(project_dir, "explorer")["services"]["explorer"]
    logs = {v["target"]: v for v in explorer["volumes"]}["/data/logs"]
    assert logs["read_only"] is True
    assert explorer["environment"]["LOCAL_LOG_DIR"] == "/data/logs"
    assert all(port["host_ip"] == "127.0.0.1" for port in explorer["ports"])


@pytest.mark.parametrize("name", DOCKERFILES)
def test_each_image_holds_every_package_its_code_imports(name: str) -> None:
    copied = {
        source.rstrip("/") for source in Dockerfile.read(REPO / name).copies
        if (REPO / source / "__init__.py").exists()
    }
    for package in copied:
        for module in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(module.read_text())):
                names = (
                    [alias.name for alias in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                    else []
                )
                for imported in names:
                    top = imported.partition(".")[0]
                    if (REPO / top / "__init__.py").exists():
                        assert top in copied, f"{module.relative_to(REPO)} imports {top}"


def _published(config: dict[str, Any], target: int) -> set[str]:
    return {port["host_ip"] for port in config["services"]["lb"]["ports"]
            if port["target"] == target}


def test_the_entry_point_is_on_loopback_unless_the_operator_opts_in(
    config: dict[str, Any], tmp_path: Path
) -> None:
    assert _published(config, 8000) == {"127.0.0.1"}
    assert config["services"]["proxy"]["environment"]["PROXY_BIND"] == "127.0.0.1"

    # PROXY_BIND in .env publishes elsewhere, and the proxy is told, so that it can refuse
    # to be an open relay (proxy/settings.py, open_relay_refusal).
    (tmp_path / ".env").write_text("PROXY_BIND=0.0.0.0\n")
    opted_in = compose_config(tmp_path)
    assert _published(opted_in, 8000) == {"0.0.0.0"}
    assert opted_in["services"]["proxy"]["environment"]["PROXY_BIND"] == "0.0.0.0"


def test_the_tls_override_adds_a_tls_port_and_mounts_one_certificate(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(compose_binary()), "-f", str(REPO / "docker-compose.yml"),
         "-f", str(REPO / "deploy" / "compose.tls.yml"), "--project-directory", str(REPO),
         "config", "--format", "json"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    lb = json.loads(result.stdout)["services"]["lb"]
    assert _published({"services": {"lb": lb}}, 8443) == {"127.0.0.1"}
    cert = next(v for v in lb["volumes"] if v["target"].endswith("/certs/proxy.pem"))
    # Not created when missing: `up` stops and names the file instead of mounting a folder.
    assert cert["bind"].get("create_host_path") is not True and cert["read_only"] is True
    assert lb["command"][-1] == "/usr/local/etc/haproxy/tls.cfg"


LOCKS = {"Dockerfile.proxy": ("requirements-proxy.txt", ["proxy"]),
         "Dockerfile.shipper": ("requirements-shipper.txt", ["shipper", "explorer"])}


def _pinned(lock: Path) -> set[str]:
    return {line.split("==")[0].lower().replace("_", "-") for line in lock.read_text().splitlines()
            if "==" in line and not line.startswith((" ", "#"))}


@pytest.mark.parametrize("name", DOCKERFILES)
def test_each_image_installs_only_its_own_locked_dependencies(name: str) -> None:
    lock_name, extras = LOCKS[name]
    text = (REPO / name).read_text()
    assert f"COPY deploy/{lock_name}" in text and "--require-hashes" in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pinned = _pinned(REPO / "deploy" / lock_name)
    for requirement in wanted:
        top = re.split(r"[\[<>=;~! ]", requirement, maxsplit=1)[0].lower().replace(".", "-")
        assert top in pinned, f"{requirement} is not in deploy/{lock_name}: run `make lock`"
    if name == "Dockerfile.proxy":
        assert not pinned & {"duckdb", "azure-storage-blob", "adlfs", "fsspec", "jinja2"}


def test_the_prometheus_example_scrapes_every_replica_where_it_listens(
    config: dict[str, Any],
) -> None:
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: (sd["names"], sd["port"])
        for job in scrape["scrape_configs"] for sd in job["dns_sd_configs"]
    }
    services = config["services"]
    assert targets["proxy"] == (["proxy"], int(services["proxy"]["environment"]["PROXY_PORT"]))
    shipper = services["shipper"]["environment"]
    assert targets["shipper"] == (["shipper"], int(shipper["SHIPPER_METRICS_PORT"]))
    assert shipper["SHIPPER_METRICS_HOST"] == "0.0.0.0"  # reachable on the compose network
    assert not services["shipper"].get("ports")  # and from nowhere else
