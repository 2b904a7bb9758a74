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
    """Where ``explorer serve`` listens; off loopback it needs ``EXPLORER_TOKEN``."""
    explorer_port: int = Field(default=8080, ge=1, le=65535)
    """The port ``explorer serve`` listens on."""
    explorer_token: SecretStr | None = None
    """The token every page wants (header or login cookie); required when
    ``EXPLORER_HOST`` is not a loopback address."""
    explorer_cache_dir: Path = Path(".explorer-cache")
    """The per-file summary cache, and a scratch folder for scans; explorers may share it."""
    explorer_prices: Path | None = None
    """A price file whose entries replace the packaged table's, per model (docs/costs.md)."""
    explorer_refresh_s: float = Field(default=5.0, ge=0)
    """``serve`` lists the store again at most this often."""
    explorer_scan_batch_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    """Files scanned together; bounds the memory of a scan."""
    openai_admin_key: SecretStr | None = Field(
        default=None,
        description="An OpenAI admin key for `explorer reconcile` (organization Usage and "
        "Costs APIs).",
    )
    explorer_admin_api_url: str = Field(
        default="https://api.openai.com/v1",
        description="Where `explorer reconcile` reads the organization Usage and Costs APIs.",
    )
    explorer_admin_api_retries: int = Field(
        default=5, ge=0, description="Retries of a throttled (429) or failed (5xx) page."
    )
    explorer_admin_api_backoff_s: float = Field(
        default=1.0, ge=0, description="The first retry delay; it doubles at each retry, to 30 s."
    )
    explorer_admin_api_timeout_s: float = Field(
        default=30.0, gt=0, description="The timeout of one Usage or Costs API request."
    )
    explorer_reconcile_tolerance: float = Field(
        default=0.01,
        ge=0,
        description="The relative difference (0.01 = 1%) beyond which `explorer reconcile` flags.",
    )

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
    def admin_key(self) -> str | None:
        return self.openai_admin_key.get_secret_value() if self.openai_admin_key else None

    @property
    def token(self) -> str | None:
        return self.explorer_token.get_secret_value() if self.explorer_token else None
