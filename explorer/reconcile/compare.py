"""The files against OpenAI's Usage and Costs APIs, per day and model.

Requests and input, cached and output tokens are compared per day and model (the model
the response names, so a snapshot such as ``gpt-4o-2024-08-06`` meets OpenAI's own
grouping); cost per day, since the Costs API does not group by model. A difference is
flagged when it exceeds ``tolerance`` of the larger side (and, for cost, a cent):
traffic that bypassed the proxy, records missing from the files, or a wrong price.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from explorer.formats import unpriced_part
from explorer.index import Index
from explorer.partitions import Selection
from explorer.prices import PriceTable
from explorer.reconcile.usage_api import USAGE_ENDPOINTS, AdminApi, fetch
from explorer.report import report

ALL_MODELS = "*"
PARTIAL_NOTE = "OpenAI's figures are partial"
MIN_COST_DIFFERENCE_USD = 0.01
TOKEN_METRICS = ("requests", "input_tokens", "cached_tokens", "output_tokens")
# The request paths OpenAI counts as model requests (others, such as /v1/models, are not).
_MODEL_PATHS = (
    "%/chat/completions",
    "%/completions",
    "%/responses",
    "%/embeddings",
    "%/audio/%",
    "%/images/%",
    "%/realtime%",
)


@dataclass(frozen=True, slots=True)
class ReconcileRow:
    """One figure of one day and model, as the files and OpenAI tell it."""

    day: str
    model: str
    metric: str
    files: float
    openai: float
    difference: float
    flagged: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(ReconcileRow.__dataclass_fields__)


@dataclass
class Reconciliation:
    rows: list[ReconcileRow] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    """Why OpenAI's side is incomplete (an endpoint that kept failing); empty when whole."""

    @property
    def flagged(self) -> bool:
        return any(row.flagged for row in self.rows)


Figures = dict[tuple[date, str], dict[str, float]]


def _openai_side(api: AdminApi, day_from: date, day_to: date, partial: list[str]) -> Figures:
    figures: Figures = defaultdict(lambda: dict.fromkeys(TOKEN_METRICS, 0.0))
    for endpoint in USAGE_ENDPOINTS:
        fetched = fetch(api, f"organization/usage/{endpoint}", day_from, day_to, ["model"])
        if fetched.partial:
            partial.append(fetched.partial)
        for day, result in fetched.results:
            into = figures[(day, str(result.get("model") or "unknown"))]
            into["requests"] += result.get("num_model_requests") or 0
            if endpoint in ("completions", "embeddings"):
                into["input_tokens"] += result.get("input_tokens") or 0
                into["cached_tokens"] += result.get("input_cached_tokens") or 0
                into["output_tokens"] += result.get("output_tokens") or 0
    return figures


def _openai_costs(
    api: AdminApi, day_from: date, day_to: date, partial: list[str]
) -> dict[date, float]:
    fetched = fetch(api, "organization/costs", day_from, day_to, [])
    if fetched.partial:
        partial.append(fetched.partial)
    costs: dict[date, float] = defaultdict(float)
    for day, result in fetched.results:
        amount = result.get("amount") or {}
        costs[day] += float(amount.get("value") or 0)
    return costs


def _files_side(index: Index, selection: Selection) -> Figures:
    index.sync(selection)
    paths = " OR ".join(f"path LIKE '{pattern}'" for pattern in _MODEL_PATHS)
    with index.connection() as con:
        rows = con.execute(
            f"""
            SELECT day, coalesce(response_model, model, 'unknown'), count(*),
                   sum(input_tokens), sum(cached_tokens), sum(output_tokens)
            FROM calls
            WHERE day >= $day_from AND day <= $day_to AND NOT is_error AND ({paths})
            GROUP BY ALL
            """,
            {"day_from": selection.day_from, "day_to": selection.day_to},
        ).fetchall()
    return {
        (day, model): dict(zip(TOKEN_METRICS, map(float, counts), strict=True))
        for day, model, *counts in rows
    }


def _differs(files: float, openai: float, tolerance: float, minimum: float = 0.0) -> bool:
    difference = abs(files - openai)
    return difference > tolerance * max(abs(files), abs(openai)) and difference > minimum


def reconcile(
    index: Index,
    prices: PriceTable,
    api: AdminApi,
    day_from: date,
    day_to: date,
    tolerance: float,
) -> Reconciliation:
    """Compare the files with OpenAI's figures for the UTC days ``day_from``..``day_to``."""
    usage_partial: list[str] = []
    costs_partial: list[str] = []
    openai = _openai_side(api, day_from, day_to, usage_partial)
    openai_costs = _openai_costs(api, day_from, day_to, costs_partial)
    # A difference against incomplete figures proves nothing: it is noted, not flagged.
    result = Reconciliation(partial=usage_partial + costs_partial)
    usage_note = PARTIAL_NOTE if usage_partial else ""
    selection = Selection(day_from, day_to)
    files = _files_side(index, selection)
    zero = dict.fromkeys(TOKEN_METRICS, 0.0)
    for day, model in sorted(set(openai) | set(files)):
        ours, theirs = files.get((day, model), zero), openai.get((day, model), zero)
        for metric in TOKEN_METRICS:
            if ours[metric] or theirs[metric]:
                result.rows.append(
                    ReconcileRow(
                        day.isoformat(),
                        model,
                        metric,
                        ours[metric],
                        theirs[metric],
                        ours[metric] - theirs[metric],
                        not usage_partial and _differs(ours[metric], theirs[metric], tolerance),
                        usage_note,
                    )
                )
    by_day = {row.day: row for row in report(index, selection, ("day",), prices) if row.day}
    for day in sorted({date.fromisoformat(d) for d in by_day} | set(openai_costs)):
        row = by_day.get(day.isoformat())
        ours_usd = (row.cost_usd or 0.0) if row else 0.0
        theirs_usd = openai_costs.get(day, 0.0)
        notes = [unpriced_part(row.unpriced_calls, row.unpriced_tokens) if row else ""]
        notes.append(PARTIAL_NOTE if costs_partial else "")
        result.rows.append(
            ReconcileRow(
                day.isoformat(),
                ALL_MODELS,
                "cost_usd",
                round(ours_usd, 6),
                round(theirs_usd, 6),
                round(ours_usd - theirs_usd, 6),
                not costs_partial
                and _differs(ours_usd, theirs_usd, tolerance, MIN_COST_DIFFERENCE_USD),
                "; ".join(note for note in notes if note),
            )
        )
    result.rows.sort(key=lambda r: (r.day, r.model == ALL_MODELS, r.model))
    return result
