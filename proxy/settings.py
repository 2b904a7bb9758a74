"""The proxy's settings: one object, built once at start-up from the environment and ``.env``.

Variable names are public (docs/configuration.md, generated from the fields' docstrings);
every duration carries its unit.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from proxy.capture.limits import CaptureLimits
from proxy.targets import UpstreamBase
from shared.settings import CommonSettings

MIB = 1024 * 1024

AuthMode = Literal["none", "keys", "passthrough"]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def parse_key_pairs(spec: str) -> list[tuple[str, str]]:
    """``KEY=USER_ID,KEY=USER_ID``; a malformed value raises ``ValueError`` naming no key."""
    pairs: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, user = item.partition("=")
        if not sep or not key.strip() or not user.strip():
            raise ValueError("PROXY_API_KEYS must be comma-separated KEY=USER_ID pairs")
        pairs.append((key.strip(), user.strip()))
    return pairs


class ProxySettings(CommonSettings):
    """Everything ``python -m proxy`` can be configured with."""

    openai_api_key: SecretStr | None = None
    """The key sent upstream (``sk-...``); not needed with ``AUTH_MODE=passthrough``."""
    openai_base_url: str = "https://api.openai.com/v1"
    """The upstream: ``/v1/{path}`` goes to ``{OPENAI_BASE_URL}/{path}``; ``http://`` or
    ``https://``. A query in it (``?api-version=...``) is sent with every request, before
    the client's; userinfo (``https://user:pass@host``) is sent as HTTP Basic auth instead
    of the key. Neither is ever shown by ``GET /``, the logs or a record."""
    proxy_host: str = "127.0.0.1"
    """Where the proxy listens. Off loopback, ``AUTH_MODE=none`` makes an open relay: the
    proxy then refuses to start unless ``ALLOW_OPEN_RELAY=true``."""
    proxy_port: int = Field(default=8000, ge=0, le=65535)
    """The port the proxy listens on."""
    proxy_bind: str | None = Field(
        default=None,
        description="The host address clients reach the proxy on, when that is not "
        "PROXY_HOST: compose hands the load balancer's published bind here, for the "
        "open-relay check. Leave it unset without compose.",
    )
    allow_open_relay: bool = Field(
        default=False,
        description="Serve with AUTH_MODE=none on a non-loopback address (something in "
        "front must authenticate); logs an `open_relay` warning at start.",
    )
    proxy_workers: int = Field(default=1, ge=1, le=64)
    """Worker processes behind the one port; ``/metrics`` adds all of them up."""
    prometheus_multiproc_dir: Path | None = None
    """With several workers, where they keep their metric values (emptied at start); a
    temporary folder when not set."""

    auth_mode: AuthMode = "none"
    """``none``: anyone may call, the upstream key is added, ``user_id`` is null; ``keys``: a
    proxy key is required and names the user (docs/keys.md); ``passthrough``: the client's
    own OpenAI key goes upstream and ``user_id`` is derived from it."""
    proxy_api_keys: SecretStr = SecretStr("")
    """Static keys for ``AUTH_MODE=keys``: comma-separated ``KEY=USER_ID`` pairs, beside the
    keys in Redis (``python -m proxy keys create``)."""

    keys_refresh_interval_s: float = Field(default=1.0, gt=0)
    """How often each replica checks Redis for created or revoked keys (one ``GET``) and
    writes last-used times."""
    passthrough_user_id_secret: SecretStr | None = None
    """Optional HMAC key for passthrough ``user_id``s, so that nobody can compute an id from
    a key without it; changing it changes every id."""

    realtime_record_audio: bool = False
    """Keep Realtime audio payloads in the record (else: their size and sha256 only)."""
    realtime_max_message_bytes: int = Field(default=16 * MIB, gt=0)
    """The largest single WebSocket message accepted from the upstream."""
    realtime_send_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "The longest a Realtime message may wait to be taken by the side it goes to; "
            "a side that stops reading ends the session (kept below the 30 s a stopping "
            "proxy waits, so that session's record is kept)."
        ),
    )
    realtime_allowed_origins: str = ""
    """With ``AUTH_MODE=none`` only: comma-separated web origins (``https://app.example``)
    whose pages may open Realtime sessions, ``*`` for any; others get 403. Browsers let any
    page open a WebSocket to any host, so without this a page the operator visits could
    spend the upstream key."""

    storage_type: Literal["local", "azure"] = "local"
    """Where the shipper writes, as configured for the proxy: informational, shown on
    ``GET /`` only."""
    spool_dir: str = "spool"
    """The outage spool's folder (docs/outages.md); replicas may share it."""
    spool_max_bytes: int = Field(default=1024 * MIB, gt=0)
    """The cap on all segments in ``SPOOL_DIR`` (every writer sharing it)."""
    spool_full_policy: Literal["drop", "reject"] = "drop"
    """When the spool is full: ``drop`` keeps serving and counts each lost record;
    ``reject`` answers new calls 503 unless the spool has room for their records."""
    spool_drain_interval_s: float = Field(default=0.5, gt=0)
    """How often the drainer looks for spooled records and asks Redis whether it is back."""

    max_request_bytes: int = Field(default=512 * MIB, gt=0)
    """Larger request bodies get 413, without being read whole; the default is OpenAI's
    file limit."""
    record_max_bytes: int = Field(default=3 * MIB, ge=64 * 1024)
    """A whole record's JSON; the default fits one append on both sinks (Azure's is 4 MiB).
    A record still larger after the other caps loses its largest parts to size and sha256
    markers."""
    record_max_body_bytes: int = Field(default=1 * MIB, gt=0)
    """Text kept of each body, of each assembled stream text or tool-call arguments, and of
    a form's fields together; longer ones are truncated and marked."""
    record_max_form_field_bytes: int = Field(default=64 * 1024, gt=0)
    """Text kept of each multipart form field."""
    record_max_form_parts: int = Field(default=100, gt=0)
    """Multipart fields and files listed; the rest are counted in ``parts_not_listed``."""
    record_max_events: int = Field(default=1000, gt=0)
    """Events kept of an unknown event stream or a Realtime session, choices, tool calls or
    output items of an assembled one, and entries per logprobs list."""
    record_max_sse_line_chars: int = Field(default=4 * MIB, gt=0)
    """The longest SSE line (or event data) parsed for the record; longer ones are skipped
    and counted (``sse_truncated``)."""
    record_max_decoded_bytes: int = Field(default=64 * MIB, gt=0)
    """Decoding a compressed response for the record stops here, so a compression bomb
    costs no more (marked ``decoded_truncated_at_bytes``)."""

    upstream_connect_timeout_s: float = Field(default=10.0, gt=0)
    """Connecting to the upstream."""
    upstream_read_timeout_s: float = Field(default=600.0, gt=0)
    """The longest gap between two bytes from the upstream, not the total duration: streams
    may last minutes."""
    upstream_pool_timeout_s: float = Field(default=10.0, gt=0)
    """Waiting for a free upstream connection."""
    upstream_max_connections: int = Field(default=200, gt=0)
    """The size of the shared upstream connection pool; idle connections stay in it until
    ``UPSTREAM_KEEPALIVE_EXPIRY_S``."""
    upstream_keepalive_expiry_s: float = Field(default=4.0, gt=0)
    """Idle upstream connections are closed after this. Keep it below the upstream's own
    keep-alive timeout (5 s for uvicorn-based servers): else a call can be sent on a
    connection the upstream is closing at that moment, and a POST cannot be retried
    safely (502)."""

    proxy_redis_timeout_s: float = Field(
        default=2.0, gt=0, validation_alias=AliasChoices("proxy_redis_timeout_s", "redis_timeout_s")
    )
    """The proxy's connect and command timeout for Redis (keys, ``/ready``), so an outage
    never stalls it for long. Publishing connects within the shorter of this and
    ``PUBLISH_TIMEOUT_S``, and each of its round trips ends within ``PUBLISH_TIMEOUT_S`` (plus
    ``REDIS_WAIT_TIMEOUT_MS`` when replicas are waited for)."""
    ready_timeout_s: float = Field(default=1.0, gt=0)
    """How long ``GET /ready`` (and ``/health``) waits for Redis to answer ``PING``."""
    publish_queue_size: int = Field(default=10_000, gt=0)
    """Records waiting to be published, in memory; beyond it they go straight to the
    spool."""
    publish_batch_size: int = Field(default=100, gt=0)
    """XADDs pipelined per round trip to Redis."""
    publish_timeout_s: float = Field(default=1.0, gt=0)
    """An XADD round trip slower than this is spooled (and counted as ambiguous)."""
    shutdown_drain_timeout_s: float = Field(default=10.0, ge=0)
    """On shutdown, how long to keep publishing queued records before spooling the rest."""

    stream_usage: Literal["inject", "passthrough"] = Field(
        default="inject",
        description="`inject`: ask the upstream for a usage chunk on streamed chat and legacy "
        "completions that do not ask for one, keep it for the record and give the client the "
        "bytes it would have had; `passthrough`: forward such calls unchanged "
        "(docs/usage.md).",
    )

    @field_validator("prometheus_multiproc_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # an empty folder name must not mean "."

    @field_validator("proxy_api_keys")
    @classmethod
    def _key_pairs_parse(cls, value: SecretStr) -> SecretStr:
        parse_key_pairs(value.get_secret_value())  # refuse a malformed value at start-up
        return value

    @field_validator("openai_base_url")
    @classmethod
    def _base_url_parses(cls, value: str) -> str:
        UpstreamBase(value)  # refuse a base the proxy could not build targets on
        return value

    @cached_property
    def capture_limits(self) -> CaptureLimits:
        """The caps on what a record keeps of an exchange."""
        return CaptureLimits(
            body_bytes=self.record_max_body_bytes,
            form_field_bytes=self.record_max_form_field_bytes,
            form_parts=self.record_max_form_parts,
            events=self.record_max_events,
            sse_line_chars=self.record_max_sse_line_chars,
            decoded_bytes=self.record_max_decoded_bytes,
        )

    @cached_property
    def upstream_base(self) -> UpstreamBase:
        """``OPENAI_BASE_URL``, parsed once: builds and checks every upstream URL."""
        return UpstreamBase(self.openai_base_url)

    def startup_warnings(self) -> list[tuple[str, str]]:
        """``(event, message)`` for configurations that run but are unsafe or useless."""
        warnings: list[tuple[str, str]] = []
        if self.open_relay:
            warnings.append(
                (
                    "open_relay",
                    f"AUTH_MODE=none on {self.exposed_on} with ALLOW_OPEN_RELAY=true: anyone "
                    "who can reach this port spends the upstream key.",
                )
            )
        if self.auth_mode == "keys" and not self.static_key_pairs:
            warnings.append(
                (
                    "no_static_keys",
                    "AUTH_MODE=keys and PROXY_API_KEYS is empty: only keys stored in Redis "
                    "are accepted; without any, every request gets 401.",
                )
            )
        if self.spool_full_policy == "reject" and self.spool_max_bytes < self.record_max_bytes:
            warnings.append(
                (
                    "spool_too_small",
                    "SPOOL_FULL_POLICY=reject and SPOOL_MAX_BYTES is below RECORD_MAX_BYTES: "
                    "each call sets RECORD_MAX_BYTES aside in the spool first, so every "
                    "call gets 503.",
                )
            )
        return warnings

    @property
    def exposed_on(self) -> str:
        """Where clients reach the proxy: ``PROXY_BIND`` when set (compose), else ``PROXY_HOST``."""
        return self.proxy_bind or self.proxy_host

    @property
    def open_relay(self) -> bool:
        """Anyone off this host may call and spend the upstream key."""
        return self.auth_mode == "none" and not _is_loopback(self.exposed_on)

    def open_relay_refusal(self) -> str | None:
        """Why the proxy must not serve (an open relay nobody opted into), or None."""
        if not self.open_relay or self.allow_open_relay:
            return None
        setting = "PROXY_BIND" if self.proxy_bind else "PROXY_HOST"
        return (
            f"proxy: refusing to start: AUTH_MODE=none and {setting}={self.exposed_on} make an "
            "open relay that spends the upstream key for anyone who can reach the port. Set "
            "AUTH_MODE=keys (or passthrough), bind 127.0.0.1, or set ALLOW_OPEN_RELAY=true "
            "if something in front authenticates."
        )

    @property
    def static_key_pairs(self) -> list[tuple[str, str]]:
        """``PROXY_API_KEYS`` as ``(key, user_id)`` pairs."""
        return parse_key_pairs(self.proxy_api_keys.get_secret_value())

    @property
    def upstream_base_url(self) -> str:
        """``OPENAI_BASE_URL`` as it may be shown: no userinfo, query or trailing slash."""
        return self.upstream_base.display

    @property
    def realtime_origins(self) -> frozenset[str]:
        """``REALTIME_ALLOWED_ORIGINS`` as a set, without trailing slashes."""
        parts = (part.strip().rstrip("/") for part in self.realtime_allowed_origins.split(","))
        return frozenset(part for part in parts if part)

    @cached_property
    def asks_stream_usage(self) -> bool:
        """``STREAM_USAGE=inject``, and the upstream is not an Azure deployment's URL
        (``/openai/deployments/...``), whose older API versions refuse ``stream_options``."""
        deployment = b"/openai/deployments/" in self.upstream_base.url.raw_path.lower()
        return self.stream_usage == "inject" and not deployment
