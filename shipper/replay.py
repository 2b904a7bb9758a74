"""``python -m shipper replay --spool DIR``: ship a proxy's spool folder straight to storage.

For a proxy host that died with records in its spool (format: ``shared.spool_format``).
Each segment is read under its ``flock``, so a live proxy draining it is never raced
(a segment whose lock is held is skipped and reported). Records go through the same
``Delivery`` as the worker's (docs/delivery.md): a record id that already landed,
from the stream or an earlier replay, is never written again, so running it twice, or
while shippers run, writes nothing twice. Segments are kept unless ``--delete`` is
given; then a segment is deleted once each of its records is in storage (a segment
with corrupt or unwritable records is kept).
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from shared.durable import fsync_folder
from shared.spool_format import read_records, segment_paths, try_lock
from shared.streams import RECORD_FIELD
from shipper.batch import Entry, Rejected, chunks_by_file, parse_entry
from shipper.delivery import Delivery
from shipper.intents import IntentLedger
from shipper.settings import ShipperSettings
from shipper.sink import Sink
from shipper.source import SourceUnavailable, StreamEntry, StreamSource, build_source
from shipper.storage import make_sink
from shipper.totals import Totals

_RECORD_KEY = RECORD_FIELD.encode()
_READ_BATCH_RECORDS = 1000


@dataclass
class ReplaySummary:
    """What a replay did, printed at the end."""

    segments_total: int = 0
    segments_busy: int = 0
    segments_deleted: int = 0
    records_read: int = 0
    records_shipped: int = 0
    records_already_present: int = 0
    records_corrupt: int = 0
    records_failed: int = 0

    def render(self) -> str:
        width = max(len(name) for name in asdict(self))
        return "\n".join(f"{name.replace('_', ' '):<{width}}  {value}"
                         for name, value in asdict(self).items())


class Replay:
    """Ships the records of spool segments through ``delivery``, then marks them shipped."""

    def __init__(self, settings: ShipperSettings, source: StreamSource, sink: Sink) -> None:
        self.source = source
        self.owner = f"replay:{secrets.token_hex(4)}"
        ledger = IntentLedger(source.client, source.stream, source.group, None,
                              source.intents_key, source.shipped_key, source.replica_wait)
        self.totals = Totals()
        self.delivery = Delivery(sink, ledger, settings.shipper_retry_max_s, self.totals)
        self.max_append_bytes = sink.max_append_bytes
        self.summary = ReplaySummary()

    async def run(self, spool: Path, delete: bool, progress: bool) -> ReplaySummary:
        """Every segment of ``spool``, oldest first, each under its lock."""
        paths = segment_paths(spool)
        self.summary.segments_total = len(paths)
        total_bytes = sum(_size(path) for path in paths)
        with tqdm(total=total_bytes, unit="B", unit_scale=True, desc="replay",
                  disable=not progress, file=sys.stderr) as bar:
            for path in paths:
                fd = try_lock(path)
                if fd is None:
                    self.summary.segments_busy += 1
                    bar.update(_size(path))
                    continue
                try:
                    complete = await self._segment(path, bar)
                    if delete and complete:
                        path.unlink()
                        fsync_folder(spool)
                        self.summary.segments_deleted += 1
                finally:
                    os.close(fd)
        return self.summary

    async def _segment(self, path: Path, bar: tqdm) -> bool:
        """Ship one segment; whether every record in it is now in storage."""
        complete = True
        batch: list[Entry] = []
        for raw in read_records(path):
            self.summary.records_read += 1
            bar.update(len(raw) + 1)
            # Owned by this replay (the tag stands where a stream entry id would).
            parsed = parse_entry(StreamEntry(self.owner, {_RECORD_KEY: raw}),
                                 self.max_append_bytes)
            if isinstance(parsed, Rejected):
                self.summary.records_corrupt += 1
                complete = False
                continue
            batch.append(parsed)
            if len(batch) >= _READ_BATCH_RECORDS:
                complete &= await self._ship(batch)
                batch = []
        if batch:
            complete &= await self._ship(batch)
        return complete

    async def _ship(self, entries: list[Entry]) -> bool:
        complete = True
        for chunk in chunks_by_file(entries, self.max_append_bytes):
            outcome = await self.delivery.write(chunk.stem, chunk.entries)
            done = [line.record_id for line in (*outcome.written, *outcome.already)]
            await self.source.finish([], done)
            self.summary.records_shipped += len(outcome.written)
            self.summary.records_already_present += len(outcome.already)
            self.summary.records_failed += len(outcome.failed)
            complete &= not outcome.failed
        return complete


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def run_replay(settings: ShipperSettings, spool: Path, delete: bool, progress: bool) -> int:
    """The ``replay`` command: the summary on stdout; exit 1 if anything is left to do."""
    sink = make_sink(settings)
    source = build_source(settings, consumer="replay")
    try:
        await sink.start()
        summary = await Replay(settings, source, sink).run(spool, delete, progress)
    except SourceUnavailable as exc:
        print(f"shipper replay: Redis is needed to ship each record once, and failed: {exc}; "
              "nothing was lost, run it again", file=sys.stderr)
        return 1
    finally:
        await sink.close()
        await source.close()
    print(summary.render())
    return 1 if summary.records_failed or summary.segments_busy else 0
