"""Settings both services share; each service builds one settings object at start-up.

Values come from the environment and from ``.env`` in the working directory. The
variable names are public (docs/contract.md). Each field's docstring is its
documentation: ``scripts/gen_config_docs.py`` writes docs/configuration.md and
``.env.example`` from these classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.replication import ReplicaWait
from shared.streams import DEFAULT_STREAM, hash_tag


class CommonSettings(BaseSettings):
    """Redis and logging, the same for the proxy and the shipper."""

    # Empty values count as unset, so a copied .env.example with blank lines keeps the defaults.
    # A field's docstring is its description (docs/configuration.md is generated from it).
    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
        use_attribute_docstrings=True,
    )

    redis_url: str = "redis://localhost:6379/0"
    """Redis for the stream and the per-user keys: ``redis://``, ``rediss://`` (TLS) or
    ``unix://``."""
    redis_stream: str = Field(default=DEFAULT_STREAM, min_length=1)
    """The stream's key; dead letters go to ``{REDIS_STREAM}:dead``."""
    redis_cluster: bool = False
    """``true``: every service talks to a Redis Cluster; ``REDIS_STREAM`` then needs a hash
    tag, such as ``{proxy}:exchanges``, so that every script and transaction stays on one
    slot."""
    log_level: str = "INFO"
    """The level of the services' own logs (stderr)."""
    log_format: Literal["text", "json"] = "text"
    """``text``, or ``json`` (one event per line)."""

    redis_min_replicas: int = Field(
        default=0, ge=0,
        description="WAIT for this many replicas after a publish, an intents write and an ack "
        "(docs/redis.md); 0 sends no WAIT (a single Redis).",
    )
    redis_wait_timeout_ms: int = Field(
        default=1000, gt=0,
        description="How long a WAIT waits for REDIS_MIN_REPLICAS; a write not confirmed by "
        "then is repeated under the same ids.",
    )
    redis_sentinels: str = Field(
        default="",
        description="Redis behind Sentinel: comma-separated host:port of the sentinels; "
        "REDIS_URL then gives only the scheme, credentials and database.",
    )
    redis_sentinel_master: str = Field(
        default="mymaster", min_length=1,
        description="The name the sentinels know the primary by.",
    )
    redis_tls_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the Redis server's certificate "
        "(rediss:// URLs); unset: the system's CAs.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_a_scheme(cls, value: str) -> str:
        return validate_redis_url(value)

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_parse(cls, value: str) -> str:
        parse_sentinels(value)
        return value

    @field_validator("redis_tls_ca_file", mode="before")
    @classmethod
    def _empty_ca_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def replica_wait(self) -> ReplicaWait:
        """``REDIS_MIN_REPLICAS`` and ``REDIS_WAIT_TIMEOUT_MS`` together."""
        return ReplicaWait(self.redis_min_replicas, self.redis_wait_timeout_ms)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``REDIS_SENTINELS`` as ``(host, port)`` pairs; empty without Sentinel."""
        return parse_sentinels(self.redis_sentinels)

    @model_validator(mode="after")
    def _one_topology(self) -> Self:
        if self.redis_cluster and self.redis_sentinels:
            raise ValueError("REDIS_CLUSTER=true and REDIS_SENTINELS exclude each other")
        return self

    @model_validator(mode="after")
    def _one_slot(self) -> Self:
        if self.redis_cluster and hash_tag(self.redis_stream) is None:
            raise ValueError(
                "REDIS_CLUSTER=true needs a hash-tagged REDIS_STREAM, such as {proxy}:exchanges, "
                "so that the stream and the keys derived from it share one slot"
            )
        return self


class StorageSettings(CommonSettings):
    """Where the JSONL files are: what the shipper writes and the explorer reads."""

    storage_type: Literal["local", "azure"] = "local"
    """Where the JSONL files are: ``local`` (``LOCAL_LOG_DIR``) or ``azure`` (a blob
    container). The proxy reads it too, only to show it on ``GET /``."""
    local_log_dir: Path = Path("logs")
    """The folder of the local JSONL files."""
    azure_storage_connection_string: SecretStr | None = None
    """An Azure Storage connection string (Azurite, SAS); used when set, else the account
    name and key."""
    azure_storage_account_name: str | None = None
    """The Azure Storage account's name, with ``AZURE_STORAGE_ACCOUNT_KEY``."""
    azure_storage_account_key: SecretStr | None = None
    """The Azure Storage account's key."""
    azure_storage_container: str = Field(default="proxy-logs", min_length=3, max_length=63)
    """The blob container of the files (the shipper creates it if missing)."""

    @model_validator(mode="after")
    def _azure_credentials(self) -> Self:
        if self.storage_type == "azure" and not (
            self.azure_storage_connection_string
            or (self.azure_storage_account_name and self.azure_storage_account_key)
        ):
            raise ValueError(
                "STORAGE_TYPE=azure needs AZURE_STORAGE_CONNECTION_STRING, "
                "or AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY"
            )
        return self

    def azure_credentials(self) -> dict[str, str]:
        """The Azure credentials to use, as adlfs's keyword arguments (secrets revealed)."""
        connection_string = self.azure_storage_connection_string
        account_key = self.azure_storage_account_key
        return adlfs_credentials(
            connection_string.get_secret_value() if connection_string else None,
            self.azure_storage_account_name,
            account_key.get_secret_value() if account_key else None,
        )


def adlfs_credentials(
    connection_string: str | None, account_name: str | None, account_key: str | None
) -> dict[str, str]:
    """The connection string if there is one, else the account name and key.

    Only the chosen credentials, and never None: adlfs reads ``AZURE_*`` variables itself
    for an argument that is missing.
    """
    if connection_string:
        return {"connection_string": connection_string}
    return {"account_name": account_name or "", "account_key": account_key or ""}


REDIS_URL_SCHEMES = ("redis", "rediss", "unix")


def parse_sentinels(spec: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as pairs; ``ValueError`` for an entry without a numeric port."""
    pairs = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("REDIS_SENTINELS must be comma-separated host:port pairs")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def validate_redis_url(value: str) -> str:
    """``value`` if it is a URL redis-py can connect to; ``ValueError`` (naming no secret) if not.

    ``localhost:6379`` is refused: without ``redis://`` it would be read as scheme
    ``localhost`` and fail only at the first command.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in REDIS_URL_SCHEMES:
        raise ValueError("must start with redis://, rediss:// or unix:// (e.g. redis://localhost:6379/0)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("needs a host (e.g. redis://localhost:6379/0)")
    if parts.scheme == "unix" and not parts.path:
        raise ValueError("needs a socket path (e.g. unix:///run/redis.sock)")
    return value


def invalid_configuration(service: str, exc: ValidationError) -> str:
    """One line for stderr: ``service: invalid configuration: VAR: problem; VAR: problem``."""
    problems = "; ".join(line.strip() for line in describe_invalid(exc).splitlines())
    return f"{service}: invalid configuration: {problems}"


def describe_invalid(exc: ValidationError) -> str:
    """What is wrong with the configuration, one line per problem, never the values (secrets)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]).upper() or "configuration"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)
