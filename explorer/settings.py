"""The explorer's settings, built once at start-up from the environment and ``.env``.

Storage is read with the shipper's public variables (``STORAGE_TYPE``, ``LOCAL_LOG_DIR``,
``AZURE_STORAGE_*``); the ``EXPLORER_*`` variables are the explorer's own.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import CommonSettings


class ExplorerSettings(CommonSettings):
    """Everything the explorer reads from its environment."""

    storage_type: Literal["local", "azure"] = "local"
    local_log_dir: Path = Path("logs")
    azure_storage_connection_string: SecretStr | None = None
    azure_storage_account_name: str | None = None
    azure_storage_account_key: SecretStr | None = None
    azure_storage_container: str = Field(default="proxy-logs", min_length=3, max_length=63)

    explorer_host: str = "127.0.0.1"
    explorer_port: int = Field(default=8080, ge=1, le=65535)
    explorer_token: SecretStr | None = None
    explorer_cache_dir: Path = Path(".explorer-cache")
    explorer_prices: Path | None = None
    explorer_refresh_s: float = Field(default=5.0, ge=0)
    explorer_scan_batch_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)

    @model_validator(mode="after")
    def _azure_credentials(self) -> ExplorerSettings:
        if self.storage_type == "azure" and not (
            self.azure_storage_connection_string
            or (self.azure_storage_account_name and self.azure_storage_account_key)
        ):
            raise ValueError(
                "STORAGE_TYPE=azure needs AZURE_STORAGE_CONNECTION_STRING, "
                "or AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY"
            )
        return self

    @property
    def binds_loopback_only(self) -> bool:
        """True when ``EXPLORER_HOST`` is reachable from this machine only."""
        if self.explorer_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.explorer_host).is_loopback
        except ValueError:
            return False

    @property
    def token(self) -> str | None:
        return self.explorer_token.get_secret_value() if self.explorer_token else None
