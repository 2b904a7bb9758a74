"""The log store, read-only: list the JSONL files and read their bytes, local or Azure.

Errors of the file system or the Azure SDK are mapped here to ``StoreError``. Nothing in
the explorer writes to the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from explorer.settings import ExplorerSettings
from shared.naming import SUFFIX


class StoreError(Exception):
    """The log store could not be listed or read."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One JSONL file as listed: its name in the store and its size when listed."""

    name: str
    size_bytes: int


class LogStore(Protocol):
    """What the explorer needs from a store of JSONL files."""

    location: str
    """A stable description of the store (also keys the summary cache)."""

    def list_files(self) -> list[StoredFile]: ...

    def read_bytes(self, name: str, end: int | None = None) -> bytes: ...

    def fetch(self, files: Sequence[StoredFile]) -> Iterator[tuple[StoredFile, bytes]]:
        """The bytes of each file up to its listed size (appended bytes wait for a new listing)."""
        ...


class LocalStore:
    """``LOCAL_LOG_DIR``: DuckDB reads the files where they are."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.location = f"local:{directory.resolve()}"

    def list_files(self) -> list[StoredFile]:
        try:
            with os.scandir(self.directory) as entries:
                return [
                    StoredFile(entry.name, entry.stat().st_size)
                    for entry in entries
                    if entry.name.endswith(SUFFIX) and entry.is_file()
                ]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {self.directory}: {exc}") from exc

    def read_bytes(self, name: str, end: int | None = None) -> bytes:
        try:
            with open(self.directory / name, "rb") as file:
                return file.read() if end is None else file.read(end)
        except OSError as exc:
            raise StoreError(f"cannot read {name}: {exc}") from exc

    def fetch(self, files: Sequence[StoredFile]) -> Iterator[tuple[StoredFile, bytes]]:
        for file in files:
            yield file, self.read_bytes(file.name, file.size_bytes)


class AzureStore:
    """An Azure container through adlfs; blobs are fetched concurrently, then handed to DuckDB."""

    def __init__(self, settings: ExplorerSettings) -> None:
        # Imported here so a local-only deployment never loads the Azure SDK.
        from adlfs import AzureBlobFileSystem

        self.container = settings.azure_storage_container
        self._fs = AzureBlobFileSystem(**settings.azure_credentials(), skip_instance_cache=True)
        account = self._fs.account_name or settings.azure_storage_account_name or "?"
        self.location = f"azure:{account}/{self.container}"

    def _path(self, name: str) -> str:
        return f"{self.container}/{name}"

    def list_files(self) -> list[StoredFile]:
        try:
            entries = self._fs.ls(self.container, detail=True, invalidate_cache=True)
        except FileNotFoundError:
            return []
        except Exception as exc:  # the Azure SDK raises many unrelated types
            raise StoreError(f"cannot list container {self.container}: {exc}") from exc
        files = []
        for entry in entries:
            name = str(entry["name"]).rsplit("/", 1)[-1]
            if entry.get("type") == "file" and name.endswith(SUFFIX):
                files.append(StoredFile(name, int(entry["size"])))
        return files

    def read_bytes(self, name: str, end: int | None = None) -> bytes:
        try:
            return bytes(self._fs.cat_file(self._path(name), start=0, end=end))
        except Exception as exc:
            raise StoreError(f"cannot read blob {name}: {exc}") from exc

    def fetch(self, files: Sequence[StoredFile]) -> Iterator[tuple[StoredFile, bytes]]:
        # One call for the batch: adlfs fetches the blobs concurrently.
        try:
            blobs = self._fs.cat_ranges(
                [self._path(file.name) for file in files],
                [0] * len(files),
                [file.size_bytes for file in files],
                on_error="return",
            )
        except Exception as exc:
            raise StoreError(f"cannot read blobs: {exc}") from exc
        for file, blob in zip(files, blobs, strict=True):
            if isinstance(blob, Exception):
                raise StoreError(f"cannot read blob {file.name}: {blob}") from blob
            yield file, bytes(blob)


def open_store(settings: ExplorerSettings) -> LogStore:
    """The store ``STORAGE_TYPE`` names."""
    if settings.storage_type == "local":
        return LocalStore(settings.local_log_dir)
    return AzureStore(settings)
