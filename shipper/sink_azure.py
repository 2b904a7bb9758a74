"""Azure Blob sink: one append blob per file, in one container, through adlfs's async client.

``append`` is one ``Append Block`` call conditioned on the append position it handed to
``prepare`` (``shipper.sink``); the SDK's retries are off, since the worker retries.
A re-sent append that had already landed is recognised as ours (``landed``). Blobs are
created with ``If-None-Match: *``, so two writers creating one never truncate it.

Near an append blob's block limit the file rolls over to its next part
(``shared.naming.file_name``). The threshold is stored in each blob's metadata when it is
created, and every writer follows the blob's own value.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from adlfs import AzureBlobFileSystem
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobProperties, BlobType, ContentSettings, StorageErrorCode
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

from shared.logs import log_event
from shared.naming import SUFFIX, file_name
from shared.settings import adlfs_credentials
from shipper.locks import KeyedLocks
from shipper.sink import AppendConflict, PermanentStorageError, Placement, Prepare, StorageError

logger = logging.getLogger(__name__)
# The Azure SDK logs every request and response at INFO: far too much for a shipper.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

MAX_APPEND_BYTES = 4 * 1024 * 1024
"""The classic Append Block limit, accepted by every service version and by Azurite."""

BLOCK_LIMIT = 50_000
MAX_NAME_CHARS = 1024
ROLLOVER_METADATA = "rollover_blocks"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
_TAIL_CACHE_MAX = 10_000

_POSITION_CONFLICT = StorageErrorCode.APPEND_POSITION_CONDITION_NOT_MET
_FULL = frozenset(
    {StorageErrorCode.BLOCK_COUNT_EXCEEDS_LIMIT, StorageErrorCode.MAX_BLOB_SIZE_CONDITION_NOT_MET}
)
_CONTENT = ContentSettings(content_type="application/x-ndjson")
# 4xx answers that a retry may cure: auth (credentials rotated), not found (a container
# being recreated), timeouts, conflicts and conditions, throttling.
_TRANSIENT_4XX = frozenset({401, 403, 404, 408, 409, 412, 429})
_PERMANENT_CODES = frozenset({StorageErrorCode.INVALID_BLOB_TYPE})


@dataclass(slots=True)
class _Tail:
    """What this sink knows of a stem's current blob.

    After its own append the sink knows the new end and block count, so the next
    append needs no properties request; if another writer appended meanwhile, the
    append-position condition refuses the write and the end is asked again.
    """

    part: int
    size: int | None = None
    """The blob's size, or ``None`` when it must be asked of the service."""
    blocks: int = 0
    rollover_blocks: int = BLOCK_LIMIT
    """The blob's own threshold (from its metadata)."""


class _Full(Exception):
    """The blob reached the service's block or size limit."""


def _is_permanent(exc: HttpResponseError) -> bool:
    """A request the service will never accept, so retrying it is pointless."""
    status = exc.status_code or 0
    if _error_code(exc) in _PERMANENT_CODES:
        return True
    return 400 <= status < 500 and status not in _TRANSIENT_4XX


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """Map Azure and network errors to ``PermanentStorageError`` or ``StorageError``."""
    try:
        yield
    except HttpResponseError as exc:
        kind = PermanentStorageError if _is_permanent(exc) else StorageError
        raise kind(f"azure {action} failed: {_first_line(exc)}") from exc
    except (AzureError, OSError) as exc:
        raise StorageError(f"azure {action} failed: {exc}") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class AzureSink:
    """JSONL files as append blobs in one container (``az://{container}/{name}``)."""

    max_append_bytes: int = MAX_APPEND_BYTES

    def __init__(
        self,
        container: str,
        *,
        connection_string: str | None = None,
        account_name: str | None = None,
        account_key: str | None = None,
        rollover_blocks: int = 49_000,
    ) -> None:
        if not connection_string and not (account_name and account_key):
            raise ValueError("AzureSink needs a connection string, or an account name and key")
        if not 0 < rollover_blocks <= BLOCK_LIMIT:
            raise ValueError(f"rollover_blocks must be in 1..{BLOCK_LIMIT}")
        self.container = container
        self.rollover_blocks = rollover_blocks
        # A private instance: the fsspec cache would share one client (and its close)
        # between sinks.
        credentials = adlfs_credentials(connection_string, account_name, account_key)
        # ``asynchronous=False`` only decides which loop adlfs's exit-time finalizer uses
        # (with ``True`` it has none and prints an error at exit); the sink itself only
        # awaits the async Azure client, which binds to the running loop on first use.
        self._fs = AzureBlobFileSystem(skip_instance_cache=True, **credentials)
        self._tails: dict[str, _Tail] = {}
        # One append per stem at a time within this process (the condition orders processes).
        self._stem_locks = KeyedLocks()

    @property
    def _service(self) -> BlobServiceClient:
        client: BlobServiceClient = self._fs.service_client
        return client

    @property
    def _container(self) -> ContainerClient:
        return self._service.get_container_client(self.container)

    def _blob(self, name: str) -> BlobClient:
        return self._service.get_blob_client(self.container, name)

    async def start(self) -> None:
        """Create the container unless it exists; raise ``StorageError`` if Azure is unreachable."""
        with _storage_errors("create container"):
            try:
                await self._container.create_container(**_once())
                log_event(logger, "container_created", container=self.container)
            except ResourceExistsError:
                pass

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        """Append ``payload`` at the end of the current part of ``stem`` if ``prepare`` agrees."""
        if len(payload) > self.max_append_bytes:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {self.max_append_bytes}")
        if len(file_name(stem, 99_999)) > MAX_NAME_CHARS:
            raise PermanentStorageError(f"blob name longer than {MAX_NAME_CHARS}: {stem[:80]}...")
        async with self._stem_locks.hold(stem):
            return await self._append_locked(stem, payload, prepare)

    async def _append_locked(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        tail = await self._current_tail(stem)
        part, offset = tail.part, tail.size
        assert offset is not None
        name = file_name(stem, part)
        placement = Placement.of(name, offset, payload)
        if not await prepare(placement):
            return None
        # Until this append is known to have landed, the end must be asked again.
        tail.size = None
        try:
            await self._append_block(placement, payload)
        except _Full as exc:
            if tail.part == part:
                tail.part += 1
                log_event(logger, "blob_rolled_over", container=self.container, blob=name)
            raise AppendConflict(f"{name} is full") from exc
        if tail.part == part:
            tail.size, tail.blocks = offset + len(payload), tail.blocks + 1
        return placement

    async def _append_block(self, placement: Placement, payload: bytes) -> None:
        """One Append Block at exactly ``placement.offset``, errors mapped."""
        # Not adlfs's 'ab' mode: it can overwrite a blob another writer has just created,
        # and may land a retried append twice.
        name, offset = placement.name, placement.offset
        try:
            # A stream, not bytes: aiohttp blocks the loop copying a large bytes body.
            await self._blob(name).append_block(
                io.BytesIO(payload), length=len(payload), appendpos_condition=offset, **_once()
            )
        except HttpResponseError as exc:
            code = _error_code(exc)
            if code == _POSITION_CONFLICT:
                # aiohttp silently re-sends a PUT once when a kept-alive connection
                # breaks; if the first send was applied, the re-send is refused here
                # although our bytes are in place.
                if await self.landed(placement):
                    return
                raise AppendConflict(f"{name}: the end moved past {offset}") from exc
            if code in _FULL:
                raise _Full from exc
            kind = PermanentStorageError if _is_permanent(exc) else StorageError
            raise kind(f"azure append to {name} failed: {_first_line(exc)}") from exc
        except (AzureError, OSError) as exc:
            # The service may have applied the block before the connection broke: the
            # worker must ask ``landed()`` before writing these records again.
            raise StorageError(f"azure append to {name} failed: {exc}") from exc

    async def landed(self, placement: Placement) -> bool:
        """Whether the blob holds exactly the placement's bytes at its offset."""
        with _storage_errors("read back"):
            try:
                stream = await self._blob(placement.name).download_blob(
                    offset=placement.offset, length=placement.length, **_once()
                )
                stored = await stream.readall()
            except ResourceNotFoundError:
                return False
            except HttpResponseError as exc:
                if exc.status_code == 416:  # the blob ends before the offset
                    return False
                raise
        return (
            len(stored) == placement.length
            and hashlib.sha256(stored).hexdigest() == placement.sha256
        )

    async def close(self) -> None:
        """Close the Azure client and its HTTP session."""
        await self._service.close()

    async def _current_tail(self, stem: str) -> _Tail:
        """The stem's current part and its size, rolling over when it nears the block limit."""
        tail = self._tails.get(stem)
        if tail is None:
            tail = _Tail(part=await self._last_existing_part(stem))
            self._remember(stem, tail)
        while True:
            if tail.size is None:
                name = file_name(stem, tail.part)
                properties = await self._properties_or_create(name)
                if properties is None:
                    tail.size, tail.blocks = 0, 0
                    tail.rollover_blocks = self.rollover_blocks
                else:
                    if properties.blob_type != BlobType.APPENDBLOB:
                        raise PermanentStorageError(
                            f"{name} is a {properties.blob_type}, not an append blob"
                        )
                    tail.size = properties.size
                    tail.blocks = properties.append_blob_committed_block_count or 0
                    tail.rollover_blocks = _rollover_of(properties, self.rollover_blocks)
            if tail.blocks < tail.rollover_blocks:
                return tail
            tail.part, tail.size = tail.part + 1, None

    async def _properties_or_create(self, name: str) -> BlobProperties | None:
        """The blob's properties, or ``None`` when this call created it empty."""
        blob = self._blob(name)
        with _storage_errors(f"open {name}"):
            try:
                properties: BlobProperties = await blob.get_blob_properties(**_once())
                return properties
            except ResourceNotFoundError:
                pass
            try:
                await self._create_append_blob(blob)
                log_event(logger, "blob_created", container=self.container, blob=name)
                return None
            except HttpResponseError as exc:
                # 409 or 412: another writer created it first; its data stays and we
                # append after it.
                if exc.status_code not in (409, 412):
                    raise
            properties = await blob.get_blob_properties(**_once())
            return properties

    async def _create_append_blob(self, blob: BlobClient) -> None:
        """Create an empty append blob unless it exists; recreate a deleted container."""
        options: dict[str, Any] = {
            "content_settings": _CONTENT,
            "metadata": {ROLLOVER_METADATA: str(self.rollover_blocks)},
            "match_condition": MatchConditions.IfMissing,
            **_once(),
        }
        try:
            await blob.create_append_blob(**options)
        except ResourceNotFoundError as exc:
            if _error_code(exc) != StorageErrorCode.CONTAINER_NOT_FOUND:
                raise
            await self.start()
            await blob.create_append_blob(**options)

    async def _last_existing_part(self, stem: str) -> int:
        """The highest rollover part of ``stem`` in the container (0 when there is none)."""
        parts = [0]
        prefix = f"{stem}."
        with _storage_errors(f"list {stem}"):
            async for blob in self._container.list_blobs(name_starts_with=prefix, **_once()):
                middle = blob.name[len(prefix) : -len(SUFFIX)]
                if blob.name.endswith(SUFFIX) and middle.isdigit() and middle[0] != "0":
                    parts.append(int(middle))
        return max(parts)

    def _remember(self, stem: str, tail: _Tail) -> None:
        if len(self._tails) >= _TAIL_CACHE_MAX:
            # Stems change with every day; old ones are simply looked up again if needed.
            self._tails.clear()
        self._tails[stem] = tail


def _rollover_of(properties: BlobProperties, default: int) -> int:
    """The threshold recorded in the blob (a blob made elsewhere has none: ours applies)."""
    raw = (properties.metadata or {}).get(ROLLOVER_METADATA, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= BLOCK_LIMIT else default


def _error_code(exc: HttpResponseError) -> object:
    """The storage error code (``x-ms-error-code``) the SDK attaches to its errors."""
    return getattr(exc, "error_code", None)


def _once() -> dict[str, Any]:
    """Per-call options: no SDK retries (the worker retries), bounded waits."""
    return {
        "retry_total": 0,
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
    }
