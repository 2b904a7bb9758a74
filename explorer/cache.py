"""Per-file summaries on disk: ``EXPLORER_CACHE_DIR/v{N}/{store}/{file name}@{size}.parquet``.

The key is the file name and its size when listed: a closed day's file keeps its size
and is never scanned again; a file the shipper appended to has a new size and is
scanned again, and its old entry is removed. Entries are written to a temporary name and
renamed, so a reader never sees half an entry, and two explorers may share the folder.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from explorer.scan import SUMMARY_VERSION

_SEPARATOR = "@"
_EXTENSION = ".parquet"


class SummaryCache:
    """The cache folder of one store."""

    def __init__(self, root: Path, store_location: str) -> None:
        store_key = hashlib.sha256(store_location.encode()).hexdigest()[:16]
        self.folder = root / f"v{SUMMARY_VERSION}" / store_key
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def scratch(self) -> Path:
        """A folder for files a scan needs for a moment (blobs fetched from Azure)."""
        return self.folder.parent / "scratch"

    def batch_folder(self) -> Path:
        """A new, unique folder for the entries one scan writes before they are published."""
        return self.folder / f".batch-{os.getpid()}-{secrets.token_hex(4)}"

    def path(self, name: str, size_bytes: int) -> Path:
        return self.folder / f"{name}{_SEPARATOR}{size_bytes}{_EXTENSION}"

    def temporary_path(self, name: str, size_bytes: int) -> Path:
        return self.folder / f".{name}{_SEPARATOR}{size_bytes}.{os.getpid()}.tmp"

    def entries(self) -> dict[str, int]:
        """Name -> size of every complete entry (the largest size when several are left)."""
        found: dict[str, int] = {}
        with os.scandir(self.folder) as listing:
            for entry in listing:
                stem, dot_parquet, _ = entry.name.rpartition(_EXTENSION)
                name, separator, size = stem.rpartition(_SEPARATOR)
                if dot_parquet and separator and size.isdigit() and not entry.name.startswith("."):
                    found[name] = max(found.get(name, -1), int(size))
        return found

    def commit(self, name: str, size_bytes: int, replaces: int | None) -> None:
        """Publish the temporary entry; drop the entry of the file's previous size."""
        os.replace(self.temporary_path(name, size_bytes), self.path(name, size_bytes))
        if replaces is not None and replaces != size_bytes:
            self.path(name, replaces).unlink(missing_ok=True)
