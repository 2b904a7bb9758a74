"""``python -m explorer reconcile``: run the comparison and print it as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from explorer.formats import csv_text, text_table
from explorer.index import Index
from explorer.prices import PriceTable
from explorer.reconcile.compare import FIELDS, Reconciliation, reconcile
from explorer.reconcile.usage_api import AdminApi
from explorer.settings import ExplorerSettings


def admin_api(settings: ExplorerSettings) -> AdminApi:
    """The Usage and Costs APIs as the settings name them."""
    return AdminApi(
        base_url=settings.explorer_admin_api_url,
        key=settings.admin_key,
        retries=settings.explorer_admin_api_retries,
        backoff_s=settings.explorer_admin_api_backoff_s,
        timeout_s=settings.explorer_admin_api_timeout_s,
    )


def _number(value: float) -> str:
    return f"{value:,.4f}" if value != int(value) else f"{int(value):,}"


def render(result: Reconciliation, fmt: str) -> str:
    """``result`` as ``table``, ``csv`` or ``json``; a partial result says so first."""
    if fmt == "json":
        document = {
            "partial": bool(result.partial),
            "partial_reasons": result.partial,
            "flagged": result.flagged,
            "rows": [row.as_dict() for row in result.rows],
        }
        return json.dumps(document, indent=2) + "\n"
    if fmt == "csv":
        return csv_text(FIELDS, (row.as_dict().values() for row in result.rows))
    head = "".join(f"PARTIAL: {reason}\n" for reason in result.partial)
    rows = [
        (
            row.day,
            row.model,
            row.metric,
            _number(row.files),
            _number(row.openai),
            _number(row.difference),
            "DIFFERS" if row.flagged else "",
            row.note,
        )
        for row in result.rows
    ]
    header = ("day", "model", "metric", "files", "openai", "difference", "flag", "note")
    return head + text_table(header, rows, numeric={"files", "openai", "difference"})


def run_reconcile(args: argparse.Namespace, settings: ExplorerSettings, index: Index) -> int:
    """Compare, print, and exit 1 on a flagged difference or a partial answer."""
    result = reconcile(
        index,
        PriceTable.load(settings.explorer_prices),
        admin_api(settings),
        args.day_from,
        args.day_to,
        settings.explorer_reconcile_tolerance,
    )
    sys.stdout.write(render(result, args.format))
    if result.partial:
        print("explorer: OpenAI's figures are partial (see above)", file=sys.stderr)
    return 1 if result.flagged or result.partial else 0
