"""What every exchange shares: created once in the app's lifespan, reached via ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.auth import Authenticator
from proxy.capture.record_json import RecordJson
from proxy.capture.record_size import bounded_json
from proxy.client_watch import ClientWatch
from proxy.keys.cache import KeyCache
from proxy.metrics import Metrics
from proxy.publish.pending import PendingRecord
from proxy.publish.pipeline import Publishing
from proxy.redaction import SecretScrubber
from proxy.settings import ProxySettings
from proxy.upstream import Upstream
from shared.record import Record
from shared.redis_client import RedisClient


@dataclass(frozen=True, slots=True)
class Runtime:
    """The process-wide collaborators of the proxy."""

    settings: ProxySettings
    upstream: Upstream
    redis: RedisClient
    metrics: Metrics
    authenticator: Authenticator
    scrubber: SecretScrubber
    publishing: Publishing
    """The publisher with its spool and drainer."""
    key_cache: KeyCache | None = None
    """The Redis-managed keys (``AUTH_MODE=keys`` only), refreshed during the lifespan."""
    client_watch: ClientWatch = field(default_factory=ClientWatch)
    """When the exchanges start watching for their client leaving."""

    def publish_record(self, record: Record, method: str, presented: list[str]) -> int | None:
        """Scrub, bound and hand ``record`` to the publisher, and count the request.

        ``presented`` are the credentials this exchange carried: scrubbed even when
        refused, since a wrong key may still be someone's key. Returns the status.
        """
        payload = bounded_json(
            record,
            self.settings.record_max_bytes,
            lambda shown: self.scrubber.scrub(shown.to_json(), presented),
        )
        status = record.response.status_code if record.response else None
        self._submit(PendingRecord(record.id, payload), method, status, record.model)
        return status

    def publish_json(self, record: RecordJson, method: str, presented: list[str]) -> None:
        """As ``publish_record``, for a record written as JSON directly (``proxy.forward``)."""
        payload = self.scrubber.scrub(record.json, presented)
        if len(payload) > self.settings.record_max_bytes:
            payload = bounded_json(
                record.model(),
                self.settings.record_max_bytes,
                lambda shown: self.scrubber.scrub(shown.to_json(), presented),
            )
        pending = PendingRecord(record.record_id, payload)
        self._submit(pending, method, record.status, record.fields["model"])

    def _submit(
        self, pending: PendingRecord, method: str, status: int | None, model: str | None
    ) -> None:
        self.publishing.reservations.hold(pending)  # before the exchange's own room is released
        self.publishing.publisher.submit(pending)
        self.metrics.count_request(method, status or 499, model)
