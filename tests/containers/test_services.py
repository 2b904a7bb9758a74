"""Each compose service's command and environment, read from ``docker-compose.yml`` and the
Dockerfiles, run on this machine against local Redis/Azurite and the real code.

The mapping from containers to this machine is in ``tests/containers/specs.py``; what the
tests add themselves is only what an operator's ``.env`` would hold (the upstream URL, a
token). A service's health is its image's own HEALTHCHECK command; ``docker stop`` is the
image's STOPSIGNAL with compose's ``stop_grace_period``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from shared.streams import DEFAULT_STREAM, RECORD_FIELD
from tests.containers.processes import ServiceProcess
from tests.containers.specs import compose_config, localize, service
from tests.factories import make_record
from tests.support.fake_payloads import LONG_STREAM_CHUNKS
from tests.support.fake_upstream import FakeUpstream
from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import redis_server_binary
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(90)

TOKEN = "explorer-test-token-3f9a"
"""What an operator puts in .env as EXPLORER_TOKEN for the explorer profile."""


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Processes a test starts; whatever is still running at the end is killed."""
    processes: list[ServiceProcess] = []
    yield processes
    for process in processes:
        process.kill()


def _config(tmp_path: Path, *profiles: str) -> dict[str, Any]:
    return compose_config(tmp_path / "project", *profiles)


def _redis_from_compose(
    config: dict[str, Any], tmp_path: Path, started: list[ServiceProcess]
) -> int:
    """The compose ``redis`` command on a free port; its data under the test's folder."""
    spec = service(config, "redis")
    port = free_port()
    local = localize(spec, hosts={}, listen_ports={}, data_dir=tmp_path / "data")
    assert local.argv[0] == "redis-server"
    local.argv[0] = redis_server_binary()
    local.argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path / "redis")]
    local.healthcheck += ["-p", str(port)]
    (tmp_path / "redis").mkdir()
    process = ServiceProcess("redis", local, tmp_path).start()
    started.append(process)
    process.wait_healthy()
    return port


def test_redis_keeps_an_aof_and_never_evicts(
    tmp_path: Path, started: list[ServiceProcess]
) -> None:
    port = _redis_from_compose(_config(tmp_path), tmp_path, started)
    client = redis.Redis(port=port, decode_responses=True)
    settings = {
        name: client.config_get(name)[name]
        for name in ("appendonly", "appendfsync", "maxmemory-policy")
    }
    assert settings == {
        "appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction",
    }
    client.xadd(DEFAULT_STREAM, {RECORD_FIELD: "{}"})
    client.close()
    assert list((tmp_path / "redis").rglob("*.aof")), "no append-only file written"


def test_proxy_and_shipper_ship_a_call_and_stop_gracefully(
    tmp_path: Path, started: list[ServiceProcess], fake_upstream: FakeUpstream
) -> None:
    config = _config(tmp_path)
    redis_port = _redis_from_compose(config, tmp_path, started)
    hosts = {"redis:6379": redis_port}
    data = tmp_path / "data"
    proxy_port = free_port()
    proxy = ServiceProcess("proxy", localize(
        service(config, "proxy"), hosts=hosts, listen_ports={"PROXY_PORT": proxy_port},
        data_dir=data,
        # As an operator's .env would; two workers, so that each one's graceful stop counts.
        extra_env={
            "OPENAI_BASE_URL": fake_upstream.base_url,
            "OPENAI_API_KEY": "sk-test",
            "PROXY_WORKERS": "2",
        },
    ), tmp_path / "proxy").start()
    started.append(proxy)
    shipper = ServiceProcess("shipper", localize(
        service(config, "shipper"), hosts=hosts,
        listen_ports={"SHIPPER_METRICS_PORT": free_port()}, data_dir=data,
    ), tmp_path / "shipper").start()
    started.append(shipper)
    proxy.wait_healthy()
    shipper.wait_healthy()

    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key="sk-client", max_retries=0
    )
    plain = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
    )
    record_ids = {plain.headers["x-proxy-record-id"]}

    # `docker stop` in the middle of a stream: the stream still ends whole.
    fake_upstream.chunk_delay_s = 0.02
    proxy_spec = service(config, "proxy")
    with client.chat.completions.with_streaming_response.create(
        model="long-stream", messages=[{"role": "user", "content": "count"}], stream=True
    ) as streaming:
        record_ids.add(streaming.headers["x-proxy-record-id"])
        chunks = iter(streaming.parse())
        text = [chunk.choices[0].delta.content or "" for chunk in islice(chunks, 1)]
        assert proxy.process is not None
        proxy.process.send_signal(signal.Signals[proxy_spec.stop_signal])
        text += [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    assert "".join(text) == "".join(f"token{k} " for k in range(LONG_STREAM_CHUNKS))
    # uvicorn re-raises SIGTERM once drained: exit by that signal, not a kill.
    assert proxy.stop(proxy_spec.stop_signal, grace_s=proxy_spec.stop_grace_s) in (0, -15)
    assert proxy.log().count("proxy_stopped") == 2  # each worker's totals were written

    logs = data / "logs"  # the shipper's LOCAL_LOG_DIR, the ./logs bind mount
    wait_until(
        lambda: record_ids <= _ids_in(logs), timeout_s=20,
        what="both calls' records in the logs volume, the stream's after the proxy stopped",
    )
    shipper_spec = service(config, "shipper")
    assert shipper.stop(shipper_spec.stop_signal, grace_s=shipper_spec.stop_grace_s) == 0
    assert "shipper_stopped" in shipper.log()


def _ids_in(folder: Path) -> set[str]:
    return {
        json.loads(line)["id"]
        for path in folder.glob("*.jsonl") for line in path.read_text().splitlines()
    }


def test_azurite_profile_ships_to_azurite(
    tmp_path: Path, started: list[ServiceProcess]
) -> None:
    config = _config(tmp_path, "azurite")
    redis_port = _redis_from_compose(config, tmp_path, started)
    azurite_spec = service(config, "azurite")
    blob_port = free_port()
    azurite_local = localize(azurite_spec, hosts={}, listen_ports={}, data_dir=tmp_path / "data")
    argv = [arg.replace("0.0.0.0", "127.0.0.1") for arg in azurite_local.argv]
    argv[argv.index("--blobPort") + 1] = str(blob_port)
    argv[argv.index("--location") + 1] = str(tmp_path / "azurite")
    azurite_local.argv = argv
    azurite = ServiceProcess("azurite", azurite_local, tmp_path / "azurite").start()
    started.append(azurite)
    wait_for_port(blob_port, timeout_s=30)

    spec = service(config, "shipper-azurite")
    local = localize(
        spec, hosts={"redis:6379": redis_port, "azurite:10000": blob_port},
        listen_ports={"SHIPPER_METRICS_PORT": free_port()}, data_dir=tmp_path / "data",
    )
    shipper = ServiceProcess("shipper-azurite", local, tmp_path / "shipper").start()
    started.append(shipper)
    shipper.wait_healthy()

    record = make_record(user_id="alice")
    stream = local.env.get("REDIS_STREAM", DEFAULT_STREAM)
    redis.Redis(port=redis_port).xadd(stream, {RECORD_FIELD: record.to_json()})
    blobs = BlobServiceClient.from_connection_string(
        local.env["AZURE_STORAGE_CONNECTION_STRING"]
    ).get_container_client(local.env["AZURE_STORAGE_CONTAINER"])

    def shipped() -> bool:
        try:
            return any(
                record.id in blobs.download_blob(blob.name).readall().decode()
                for blob in blobs.list_blobs()
            )
        except ResourceNotFoundError:  # the container appears with the first append
            return False

    wait_until(shipped, timeout_s=30, what="the record in an Azurite blob")
    assert shipper.stop("SIGTERM", grace_s=spec.stop_grace_s) == 0


def test_explorer_profile_serves_the_logs_volume(
    tmp_path: Path, started: list[ServiceProcess]
) -> None:
    config = _config(tmp_path, "explorer")
    spec = service(config, "explorer")
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    record = make_record(user_id="alice")
    (data / "logs" / "alice_gpt-4o-mini_20260101.jsonl").write_bytes(record.to_json() + b"\n")
    local = localize(
        spec, hosts={}, listen_ports={"EXPLORER_PORT": free_port()}, data_dir=data,
        extra_env={"EXPLORER_TOKEN": TOKEN},
    )
    explorer = ServiceProcess("explorer", local, tmp_path / "explorer").start()
    started.append(explorer)
    explorer.wait_healthy()
    page = f"http://127.0.0.1:{local.env['EXPLORER_PORT']}/records/{record.id}"
    assert httpx.get(page, timeout=30).status_code in (401, 403)
    shown = httpx.get(page, headers={"X-Explorer-Token": TOKEN}, timeout=30)
    assert shown.status_code == 200 and record.id in shown.text
    assert explorer.stop("SIGTERM", grace_s=spec.stop_grace_s) is not None
