"""The command line: ``python -m shipper [run]`` ships; ``status [--json]`` shows the backlog;
``replay --spool DIR [--delete]`` ships a dead proxy's spool straight to storage."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from shared import heap
from shared.logs import log_event
from shared.startup import load_settings
from shipper.replay import run_replay
from shipper.settings import ShipperSettings
from shipper.status import print_status
from shipper.storage import make_sink
from shipper.telemetry import TelemetryServer
from shipper.totals import totals_fields
from shipper.worker import build_worker

logger = logging.getLogger("shipper")

_SWITCH_INTERVAL_S = 0.001
"""How long the event loop may hold the GIL while a thread waits for it (default 5 ms)."""


async def serve(settings: ShipperSettings) -> None:
    """Run one shipper until SIGTERM/SIGINT, then shut down within the time limit."""
    sink = make_sink(settings)
    worker = build_worker(settings, sink)
    source = worker.source
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    log_event(logger, "shipper_started", consumer=source.consumer, stream=source.stream,
              storage_type=settings.storage_type,
              batch_max_records=settings.shipper_batch_max_records,
              claim_idle_ms=settings.shipper_claim_idle_ms)
    telemetry = TelemetryServer(settings, worker.telemetry)
    await telemetry.start()
    heap.settle()
    task = asyncio.create_task(worker.run())
    # Shutdown, in order: a signal stops reading; the batch in hand gets the time limit
    # to be written and acknowledged; past it the task is cancelled, and whatever was not
    # acknowledged stays pending for the next shipper (its intents prevent duplicates).
    stopped = asyncio.create_task(worker.stopping.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finished, _ = await asyncio.wait({task}, timeout=settings.shipper_shutdown_timeout_s)
    stopped.cancel()
    if not finished:
        log_event(logger, "shutdown_timeout", logging.WARNING,
                  timeout_s=settings.shipper_shutdown_timeout_s)
        task.cancel()
        await asyncio.wait({task})
    elif (error := task.exception()) is not None:
        log_event(logger, "shipper_failed", logging.ERROR, error=repr(error))
        raise error
    await telemetry.stop()
    await sink.close()
    await source.close()
    log_event(logger, "shipper_stopped", consumer=source.consumer, **totals_fields(worker.totals))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shipper", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="ship records from the Redis stream to storage (default)")
    status = commands.add_parser("status", help="show the backlog")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    replay = commands.add_parser(
        "replay", help="ship the records of a proxy's spool folder straight to storage"
    )
    replay.add_argument("--spool", type=Path, required=True, help="the spool folder")
    replay.add_argument("--delete", action="store_true",
                        help="delete each segment once every record in it is in storage")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    settings = load_settings("shipper", ShipperSettings)
    if args.command == "status":
        return asyncio.run(print_status(settings, as_json=args.json))
    if args.command == "replay":
        if not args.spool.is_dir():
            print(f"shipper replay: no spool folder at {args.spool}", file=sys.stderr)
            return 2
        return asyncio.run(run_replay(settings, args.spool, args.delete, not args.no_progress))
    # The appends' threads take the GIL back after each system call; while the event loop
    # checks records, the default 5 ms switch interval made each of them wait that long.
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    asyncio.run(serve(settings))
    return 0
