"""What every exchange shares: created once in the app's lifespan, reached via ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from proxy.auth import Authenticator
from proxy.keys.cache import KeyCache
from proxy.metrics import Metrics
from proxy.publish.pipeline import Publishing
from proxy.publish.publisher import Publisher
from proxy.redaction import SecretScrubber
from proxy.settings import ProxySettings
from shared.redis_client import RedisClient


@dataclass(frozen=True, slots=True)
class Runtime:
    """The process-wide collaborators of the proxy."""

    settings: ProxySettings
    client: httpx.AsyncClient
    redis: RedisClient
    publisher: Publisher
    metrics: Metrics
    authenticator: Authenticator
    scrubber: SecretScrubber
    publishing: Publishing
    """The publisher with its spool and drainer (``publisher`` is its front door)."""
    key_cache: KeyCache | None = None
    """The Redis-managed keys (``AUTH_MODE=keys`` only), refreshed during the lifespan."""
