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

    return AzureSink(
        settings.azure_storage_container,
        **settings.azure_credentials(),
        rollover_blocks=settings.azure_rollover_blocks,
    )
