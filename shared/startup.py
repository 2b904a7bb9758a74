"""What every command line does first: read its settings, then set up logging as they say."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from shared.logs import setup_logging
from shared.settings import CommonSettings, invalid_configuration

SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def load_settings(
    service: str,
    settings_class: type[SettingsT],
    setup_logs: Callable[[SettingsT], None] | None = None,
) -> SettingsT:
    """``settings_class`` built from the environment and ``.env``, logging set up
    (by ``setup_logs`` when given: the proxy's redacts credentials).

    An invalid configuration is one line on stderr naming each variable (never its value)
    and exit status 2.
    """
    try:
        settings = settings_class()
    except ValidationError as exc:
        print(invalid_configuration(service, exc), file=sys.stderr)
        raise SystemExit(2) from None
    if setup_logs is None:
        setup_logging(settings.log_level, settings.log_format)
    else:
        setup_logs(settings)
    return settings
