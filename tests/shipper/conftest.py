"""Fixtures for the shipper tests: settings, publishing records, running shippers, reading files.

Fixture names are stable (the Azure tests use them too): ``shipper_settings``,
``log_dir``, ``stream``, ``publish``, ``shipper_env``, ``container``, ``azure_settings``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from shared.record import Record
from shared.streams import CONSUMER_GROUP, RECORD_FIELD
from shipper.settings import ShipperSettings
from shipper.sink import Sink
from shipper.storage import make_sink
from shipper.worker import Worker, build_worker

REPO = Path(__file__).resolve().parents[2]
STREAM = "test:exchanges"

Publish = Callable[[Iterable[Record | bytes | dict[str, Any]]], list[str]]


@pytest.fixture
def stream() -> str:
    return STREAM


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def shipper_settings(redis_url: str, log_dir: Path) -> ShipperSettings:
    """Local storage, short timeouts so recovery paths run within a test's patience."""
    return ShipperSettings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_url,
        redis_stream=STREAM,
        storage_type="local",
        local_log_dir=log_dir,
        shipper_block_ms=100,
        shipper_claim_idle_ms=1000,
        shipper_retry_max_s=0.5,
        shipper_shutdown_timeout_s=10,
    )


@pytest.fixture
def container() -> str:
    return f"t{uuid.uuid4().hex[:24]}"


def on_azure(settings: ShipperSettings, connection_string: str, container: str,
             **changes: Any) -> ShipperSettings:
    return settings.model_copy(update={
        "storage_type": "azure",
        "azure_storage_connection_string": SecretStr(connection_string),
        "azure_storage_container": container,
        **changes,
    })


@pytest.fixture
def azure_settings(
    shipper_settings: ShipperSettings, azurite_connection_string: str, container: str
) -> ShipperSettings:
    return on_azure(shipper_settings, azurite_connection_string, container)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def publish(redis_client: redis.Redis) -> Publish:
    """XADD records (or raw field dicts / raw bytes as the record field) to the test stream."""

    def _publish(items: Iterable[Record | bytes | dict[str, Any]]) -> list[str]:
        pipe = redis_client.pipeline(transaction=False)
        for item in items:
            if isinstance(item, Record):
                fields: dict[Any, Any] = {RECORD_FIELD: item.to_json()}
            elif isinstance(item, bytes):
                fields = {RECORD_FIELD: item}
            else:
                fields = item
            pipe.xadd(STREAM, fields)
        return [entry_id.decode() for entry_id in pipe.execute()]

    return _publish


@pytest.fixture
def shipper_env(redis_url: str, log_dir: Path) -> dict[str, str]:
    """Environment for a ``python -m shipper`` subprocess on the test's Redis and folder."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SHIPPER_", "AZURE_", "REDIS_", "STORAGE_", "LOCAL_LOG"))}
    env.update(
        REDIS_URL=redis_url,
        REDIS_STREAM=STREAM,
        STORAGE_TYPE="local",
        LOCAL_LOG_DIR=str(log_dir),
        SHIPPER_BLOCK_MS="100",
        SHIPPER_CLAIM_IDLE_MS="1000",
        SHIPPER_RETRY_MAX_S="0.5",
        SHIPPER_METRICS_PORT="0",  # several shippers per test: a test that wants it sets one
        LOG_FORMAT="json",
        PYTHONPATH=str(REPO),
    )
    return env


def start_shipper(env: dict[str, str], cwd: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """``python -m shipper`` as a real process, its events going to ``log_file``."""
    cwd.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "shipper"], env=env, cwd=cwd,
            stdout=log, stderr=subprocess.STDOUT,
        )


def events(log_file: Path, name: str) -> list[dict[str, Any]]:
    """The JSON log events called ``name`` in a shipper's log."""
    found = []
    for line in log_file.read_text().splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def read_lines(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every file's lines as JSON; fails on a line that is not one complete JSON object."""
    files: dict[str, list[dict[str, Any]]] = {}
    if not folder.exists():
        return files
    for path in sorted(folder.glob("*.jsonl")):
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{path.name} ends in a torn line"
        files[path.name] = [json.loads(line) for line in data.splitlines()]
    return files


def shipped_ids(folder: Path) -> list[str]:
    """The ``id`` of every line in every file, duplicates included."""
    return [line["id"] for lines in read_lines(folder).values() for line in lines]


def stream_length(client: redis.Redis) -> int:
    return int(client.xlen(STREAM))


def pending_count(client: redis.Redis) -> int:
    try:
        return int(client.xpending(STREAM, CONSUMER_GROUP)["pending"])
    except redis.ResponseError:
        return 0


@asynccontextmanager
async def running_worker(
    settings: ShipperSettings, sink: Sink | None = None
) -> AsyncIterator[Worker]:
    """An in-process shipper on ``settings``; stopped (batch in hand finished) on exit."""
    worker = build_worker(settings, sink or make_sink(settings))
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=30)
        await worker.sink.close()
        await worker.source.close()


def names_in(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted (kept out of async tests: blocking file I/O)."""
    return sorted(folder.iterdir())


def make_unusable(folder: Path) -> None:
    """Put a regular file where the folder should be: every open below it fails, even as root."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")


def make_usable(folder: Path) -> None:
    """Undo ``make_unusable``."""
    folder.unlink()
    folder.mkdir()


def everything_inside(folder: Path, root: Path) -> bool:
    """Whether every log file under ``root`` is a plain file directly in ``folder``."""
    written = [p for p in root.rglob("*") if p.is_file() and p.suffix == ".jsonl"]
    return bool(written) and all(p.parent.resolve() == folder.resolve() for p in written) and all(
        p.is_file() for p in names_in(folder)
    )


def write_files(contents: dict[Path, bytes]) -> None:
    """Create files with the given bytes."""
    for path, data in contents.items():
        path.write_bytes(data)


def read_file(path: Path) -> bytes:
    return path.read_bytes()
