"""``python -m explorer report|serve|prices check|reconcile``.

Exit status: 0 done, 1 the store could not be read (``prices check``: something is
unpriced; ``reconcile``: a flagged difference or a partial answer), 2 bad arguments or
configuration (``reconcile``: a missing, invalid or non-admin ``OPENAI_ADMIN_KEY``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from tqdm import tqdm

from explorer.cache import SummaryCache
from explorer.formats import TABLE_FIELDS, as_csv, as_json, as_table, text_table
from explorer.index import Index
from explorer.partitions import Selection
from explorer.pricecheck import check_prices
from explorer.prices import PriceTable, PriceTableError
from explorer.reconcile.cli import run_reconcile
from explorer.reconcile.usage_api import AdminKeyError
from explorer.report import GROUP_KEYS, GroupKey, report
from explorer.settings import ExplorerSettings
from explorer.store import StoreError, open_store
from shared.startup import load_settings

_KEY_FIELD = {"user": "user_id", "model": "model", "day": "day"}


def _day(text: str) -> date:
    """``YYYY-MM-DD``, ``today``, or ``Nd``: the first of the last N UTC days (``1d`` is today)."""
    today = datetime.now(UTC).date()
    if text == "today":
        return today
    if text.endswith("d") and text[:-1].isdigit() and int(text[:-1]) >= 1:
        return today - timedelta(days=int(text[:-1]) - 1)
    try:
        return date.fromisoformat(text)  # YYYY-MM-DD or YYYYMMDD
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a day (YYYY-MM-DD, today or Nd such as 7d): {text!r}"
        ) from None


def _range(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--from", dest="day_from", type=_day, default="today", help="first UTC day (default today)"
    )
    command.add_argument(
        "--to", dest="day_to", type=_day, default="today", help="last UTC day (default today)"
    )


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
    _range(rep)
    rep.add_argument("--by", type=_keys, default=list(GROUP_KEYS), help="default user,model,day")
    rep.add_argument("--user", help="only this user_id")
    rep.add_argument("--model", help="only this model")
    rep.add_argument("--format", choices=("table", "csv", "json"), default="table")
    commands.add_parser("serve", help="the web UI on EXPLORER_HOST:EXPLORER_PORT")
    prices = commands.add_parser("prices", help="the price table")
    prices_commands = prices.add_subparsers(dest="prices_command", required=True)
    _range(prices_commands.add_parser("check", help="models and units seen without a price"))
    rec = commands.add_parser("reconcile", help="the files against OpenAI's usage and costs")
    _range(rec)
    rec.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return parser


def _index(settings: ExplorerSettings) -> Index:
    store = open_store(settings)
    return Index(
        store,
        SummaryCache(settings.explorer_cache_dir, store.location),
        scan_batch_bytes=settings.explorer_scan_batch_bytes,
    )


def _prices_check(args: argparse.Namespace, settings: ExplorerSettings) -> int:
    prices = PriceTable.load(settings.explorer_prices)
    checked = check_prices(_index(settings), Selection(args.day_from, args.day_to), prices)
    for model, other in checked.priced_as.items():
        print(f"{model}: priced as {other} (no price of its own)")
    if not checked.unpriced:
        print(f"every model and unit from {args.day_from} to {args.day_to} has a price")
        return 0
    header = ("model", "unit", "calls", "tokens", "reason")
    rows = [
        (u.model or "(none)", u.unit, f"{u.calls:,}", f"{u.tokens:,}", u.reason)
        for u in checked.unpriced
    ]
    sys.stdout.write(text_table(header, rows, numeric={"calls", "tokens"}))
    return 1


def _report(args: argparse.Namespace, settings: ExplorerSettings) -> int:
    prices = PriceTable.load(settings.explorer_prices)
    index = _index(settings)
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
        shown = [f for f in TABLE_FIELDS if f not in _KEY_FIELD.values() or f in grouped]
        sys.stdout.write(as_table(rows, shown))
        if "model" in args.by:
            for model, base in check_prices(index, selection, prices).priced_as.items():
                print(f"note: {model} is priced as {base} (no price of its own)")
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
        if args.command in ("report", "prices", "reconcile") and args.day_to < args.day_from:
            print("explorer: --to is before --from", file=sys.stderr)
            return 2
        if args.command == "report":
            return _report(args, settings)
        if args.command == "prices":
            return _prices_check(args, settings)
        if args.command == "reconcile":
            return run_reconcile(args, settings, _index(settings))
        return _serve(settings)
    except AdminKeyError as exc:
        print(f"explorer: {exc}", file=sys.stderr)
        return 2
    except PriceTableError as exc:
        print(f"explorer: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"explorer: {exc}", file=sys.stderr)
        return 1
