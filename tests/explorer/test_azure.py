"""The Azure path: the same files as append blobs in Azurite give the same answers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from pydantic import SecretStr

from explorer.cache import SummaryCache
from explorer.index import Index
from explorer.partitions import Selection
from explorer.records import find_record
from explorer.settings import ExplorerSettings
from explorer.store import AzureStore
from tests.explorer.conftest import PRICES, SCRIPT_PROMPT, run_explorer
from tests.explorer.expected import expected_report, merged_prices
from tests.explorer.test_report import _assert_same

pytestmark = pytest.mark.azure


def _upload(logs: Path, connection_string: str, container: str) -> None:
    service = BlobServiceClient.from_connection_string(connection_string)
    service.create_container(container)
    for path in logs.iterdir():
        blob = service.get_blob_client(container, path.name)
        blob.create_append_blob()
        blob.append_block(path.read_bytes())


@pytest.mark.slow
def test_report_over_azurite_equals_a_direct_computation(
    logs: Path, prices_file: Path, tmp_path: Path, azurite_connection_string: str
) -> None:
    _upload(logs, azurite_connection_string, "explorer-report")
    env = {
        "STORAGE_TYPE": "azure",
        "AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string,
        "AZURE_STORAGE_CONTAINER": "explorer-report",
        "EXPLORER_CACHE_DIR": str(tmp_path / "cache"),
        "EXPLORER_PRICES": str(prices_file),
    }
    result = run_explorer(
        ["report", "--from", "2024-10-21", "--to", "2024-10-22", "--format", "json"],
        env, tmp_path,
    )
    assert result.returncode == 0, result.stderr
    _assert_same(json.loads(result.stdout), expected_report(logs, merged_prices(PRICES)))


def test_azure_records_open_and_appended_blobs_are_rescanned(
    logs: Path, tmp_path: Path, azurite_connection_string: str
) -> None:
    _upload(logs, azurite_connection_string, "explorer-records")
    settings = ExplorerSettings(
        storage_type="azure",
        azure_storage_connection_string=SecretStr(azurite_connection_string),
        azure_storage_container="explorer-records",
        _env_file=None,  # type: ignore[call-arg]
    )
    store = AzureStore(settings)
    index = Index(store, SummaryCache(tmp_path / "cache", store.location))
    day = Selection(date(2024, 10, 22), date(2024, 10, 22))
    assert index.sync(day).files_scanned > 0

    record = find_record(index, "xss-1")
    assert record is not None
    assert record["request"]["body"]["messages"][0]["content"] == SCRIPT_PROMPT

    name = next(f.name for f in store.list_files() if f.name.startswith("bob_gpt-4o_"))
    extra = dict(record, id="appended-1", user_id="bob", model="gpt-4o")
    blob = BlobServiceClient.from_connection_string(azurite_connection_string).get_blob_client(
        "explorer-records", name)
    blob.append_block(json.dumps(extra).encode() + b"\n")
    assert index.sync(day).files_scanned == 1
    found = find_record(index, "appended-1")
    assert found is not None and found["user_id"] == "bob"
