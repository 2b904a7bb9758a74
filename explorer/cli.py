"""``python -m explorer report ...`` and ``python -m explorer serve``.

Exit status: 0 done, 1 the store could not be read, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date

from tqdm import tqdm

from explorer.cache import SummaryCache
from explorer.formats import as_csv, as_json, as_table
from explorer.index import Index
from explorer.partitions import Selection
from explorer.prices import PriceTable, PriceTableError
from explorer.report import FIELDS, GROUP_KEYS, GroupKey, report
from explorer.settings import ExplorerSettings
from explorer.store import StoreError, open_store
from shared.startup import load_settings

_KEY_FIELD = {"user": "user_id", "model": "model", "day": "day"}


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)  # YYYY-MM-DD or YYYYMMDD
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def _keys(text: str) -> list[GroupKey]:
    keys = [part.strip() for part in text.split(",") if part.strip()]
    for key in keys:
        if key not in GROUP_KEYS:
            raise argparse.ArgumentTypeError(f"--by takes user, model, day; not {key!r}")
    return [key for key in GROUP_KEYS if key in keys]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m explorer", description="Usage and logs over the JSONL files."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("report", help="calls, tokens, cost and latency per user/model/day")
    rep.add_argument("--from", dest="day_from", type=_day, required=True, help="first UTC day")
    rep.add_argument("--to", dest="day_to", type=_day, required=True, help="last UTC day")
    rep.add_argument("--by", type=_keys, default=list(GROUP_KEYS), help="default user,model,day")
    rep.add_argument("--user", help="only this user_id")
    rep.add_argument("--model", help="only this model")
    rep.add_argument("--format", choices=("table", "csv", "json"), default="table")
    commands.add_parser("serve", help="the web UI on EXPLORER_HOST:EXPLORER_PORT")
    return parser


def _report(args: argparse.Namespace, settings: ExplorerSettings) -> int:
    if args.day_to < args.day_from:
        print("explorer: --to is before --from", file=sys.stderr)
        return 2
    prices = PriceTable.load(settings.explorer_prices)
    store = open_store(settings)
    index = Index(
        store,
        SummaryCache(settings.explorer_cache_dir, store.location),
        scan_batch_bytes=settings.explorer_scan_batch_bytes,
    )
    selection = Selection(args.day_from, args.day_to, args.user, args.model)
    with tqdm(
        total=0,
        unit="B",
        unit_scale=True,
        desc="scanning",
        file=sys.stderr,
        disable=None,
        leave=False,
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        rows = report(index, selection, args.by, prices, progress)
    if args.format == "json":
        sys.stdout.write(as_json(rows) + "\n")
    elif args.format == "csv":
        sys.stdout.write(as_csv(rows))
    else:
        grouped = {_KEY_FIELD[key] for key in args.by}
        shown = [f for f in FIELDS if f not in _KEY_FIELD.values() or f in grouped]
        sys.stdout.write(as_table(rows, shown))
    return 0


def _serve(settings: ExplorerSettings) -> int:
    if not settings.binds_loopback_only and not settings.token:
        print(
            f"explorer: EXPLORER_HOST={settings.explorer_host} is reachable from other "
            "machines: set EXPLORER_TOKEN, or bind to 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from explorer.web.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.explorer_host, port=settings.explorer_port, log_config=None)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings("explorer", ExplorerSettings)
    try:
        if args.command == "report":
            return _report(args, settings)
        return _serve(settings)
    except PriceTableError as exc:
        print(f"explorer: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"explorer: {exc}", file=sys.stderr)
        return 1
