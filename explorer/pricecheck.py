"""What a date range could not price (``explorer prices check``), and which models took
another model's price (a snapshot its base model's, a deployment its served model's)."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.costs import priced_groups, unpriced_reason
from explorer.index import Index
from explorer.partitions import Selection
from explorer.prices import PriceTable
from explorer.report import where_clause


@dataclass(frozen=True, slots=True)
class Unpriced:
    """One model and unit seen without a price, with how many calls used it."""

    model: str | None
    unit: str
    calls: int
    tokens: int
    reason: str


@dataclass(frozen=True, slots=True)
class PriceCheck:
    unpriced: list[Unpriced]
    priced_as: dict[str, str]
    """Model → the model whose price it took (it has none of its own)."""


def check_prices(index: Index, selection: Selection, prices: PriceTable) -> PriceCheck:
    """Every model and unit in ``selection`` without a price, and the price fallbacks."""
    index.sync(selection)
    where, params = where_clause(selection)
    found: dict[tuple[str | None, str, str], list[int]] = {}
    priced_as: dict[str, str] = {}
    for group in priced_groups(index, where, params, prices):
        if group.priced_as is not None and group.model is not None:
            priced_as[group.model] = group.priced_as
        if group.usd is not None:
            continue
        units = ("usage",) if group.problem is not None else group.missing
        for unit in units:
            counts = found.setdefault((group.model, unit, unpriced_reason(group)), [0, 0])
            counts[0] += group.calls
            counts[1] += group.tokens
    unpriced = [
        Unpriced(model, unit, calls, tokens, reason)
        for (model, unit, reason), (calls, tokens) in sorted(
            found.items(), key=lambda item: (item[0][0] or "", item[0][1], item[0][2])
        )
    ]
    return PriceCheck(unpriced, dict(sorted(priced_as.items())))
