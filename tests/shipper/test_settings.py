"""Shipper settings: defaults, validation, and the sink they build."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shipper.settings import ShipperSettings
from shipper.sink_local import LocalSink
from shipper.storage import make_sink


def _settings(**values: object) -> ShipperSettings:
    return ShipperSettings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_suit_most_users(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STORAGE_TYPE", "LOCAL_LOG_DIR", "SHIPPER_CLAIM_IDLE_MS", "REDIS_CLUSTER",
                 "SHIPPER_REDIS_TIMEOUT_S", "SHIPPER_SHIPPED_IDS_RETENTION_S",
                 "SHIPPER_DEAD_LETTER_MAX_ENTRIES"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings()
    assert settings.storage_type == "local"
    assert settings.local_log_dir == Path("logs")
    assert settings.shipper_batch_max_records == 10_000
    assert settings.shipper_claim_idle_ms <= 30_000
    assert _settings().shipper_consumer_name != settings.shipper_consumer_name
    assert settings.shipper_redis_timeout_s == 5
    assert settings.shipper_shipped_ids_retention_s == 3 * 24 * 3600
    assert settings.shipper_dead_letter_max_entries == 100_000
    assert settings.redis_cluster is False


def test_public_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STORAGE_TYPE", "local")
    monkeypatch.setenv("LOCAL_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("SHIPPER_BATCH_MAX_RECORDS", "7")
    settings = _settings()
    assert settings.shipper_batch_max_records == 7
    sink = make_sink(settings)
    assert isinstance(sink, LocalSink) and sink.root == tmp_path.resolve()


def test_azure_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME",
                 "AZURE_STORAGE_ACCOUNT_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="AZURE_STORAGE_CONNECTION_STRING"):
        _settings(storage_type="azure")
    with pytest.raises(ValidationError):
        _settings(storage_type="azure", azure_storage_account_name="acct")
    ok = _settings(storage_type="azure", azure_storage_account_name="a",
                   azure_storage_account_key="s3cr3t-key")
    assert "s3cr3t-key" not in repr(ok)
