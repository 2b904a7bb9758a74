"""The explorer's settings, built once at start-up from the environment and ``.env``.

Storage is read with the shipper's public variables (``STORAGE_TYPE``, ``LOCAL_LOG_DIR``,
``AZURE_STORAGE_*``); the ``EXPLORER_*`` variables are the explorer's own.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import StorageSettings


class ExplorerSettings(StorageSettings):
    """Everything the explorer reads from its environment."""

    explorer_host: str = "127.0.0.1"
    explorer_port: int = Field(default=8080, ge=1, le=65535)
    explorer_token: SecretStr | None = None
    explorer_cache_dir: Path = Path(".explorer-cache")
    explorer_prices: Path | None = None
    explorer_refresh_s: float = Field(default=5.0, ge=0)
    explorer_scan_batch_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)

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
