"""Build the sink ``STORAGE_TYPE`` names from the settings."""

from __future__ import annotations

from shipper.settings import ShipperSettings
from shipper.sink import Sink
from shipper.sink_local import LocalSink


def make_sink(settings: ShipperSettings) -> Sink:
    """A ``LocalSink`` on ``LOCAL_LOG_DIR``, or an ``AzureSink`` on the container."""
    if settings.storage_type == "local":
        return LocalSink(settings.local_log_dir)
    # Imported here so a local-only deployment never loads the Azure SDK.
    from shipper.sink_azure import AzureSink

    connection_string = settings.azure_storage_connection_string
    account_key = settings.azure_storage_account_key
    return AzureSink(
        settings.azure_storage_container,
        connection_string=connection_string.get_secret_value() if connection_string else None,
        account_name=settings.azure_storage_account_name,
        account_key=account_key.get_secret_value() if account_key else None,
        rollover_blocks=settings.azure_rollover_blocks,
    )
