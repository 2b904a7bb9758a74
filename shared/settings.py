"""Settings both services share; each service builds one settings object at start-up.

Values come from the environment and from ``.env`` in the working directory. The
variable names are public (DESIGN.md, "Configuration").
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.streams import DEFAULT_STREAM


class CommonSettings(BaseSettings):
    """Redis and logging, the same for the proxy and the shipper."""

    # Empty values count as unset, so a copied .env.example with blank lines keeps the defaults.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    redis_url: str = "redis://localhost:6379/0"
    redis_stream: str = Field(default=DEFAULT_STREAM, min_length=1)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"


def describe_invalid(exc: ValidationError) -> str:
    """What is wrong with the configuration, one line per problem, never the values (secrets)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]).upper() or "configuration"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)
