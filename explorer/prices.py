"""Prices per model and day, from ``prices.json`` in this package and ``EXPLORER_PRICES``.

Every entry gives input, cached-input and output prices in USD per 1M tokens, the UTC days
it is effective (``effective_from`` inclusive, ``effective_to`` exclusive, ``null`` open)
and a source note. An override file has the same format; its entries for a model replace
the packaged ones for that model. A model is matched by its exact name: a snapshot name
(``gpt-4o-2024-05-13``) can carry another price than its alias, so it is unpriced until
the table names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

TOKENS_PER_PRICE_UNIT = 1_000_000


class PriceEntry(BaseModel):
    """One line of the price table."""

    model: str = Field(min_length=1)
    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)
    effective_from: date | None = None
    effective_to: date | None = None
    source: str = Field(min_length=1)

    def covers(self, day: date) -> bool:
        return (self.effective_from is None or day >= self.effective_from) and (
            self.effective_to is None or day < self.effective_to
        )


class PriceFile(BaseModel):
    prices: list[PriceEntry]


class PriceTableError(Exception):
    """A price file could not be read or is not a valid price table."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts of some calls; ``input`` includes ``cached``, as OpenAI reports it."""

    input: int
    output: int
    cached: int


class PriceTable:
    """Looks up the price of a model on a day and prices token counts."""

    def __init__(self, entries: list[PriceEntry]) -> None:
        self._by_model: dict[str, list[PriceEntry]] = {}
        for entry in entries:
            self._by_model.setdefault(entry.model, []).append(entry)

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        """The packaged table, with ``override``'s models replacing the packaged ones."""
        packaged = resources.files("explorer").joinpath("prices.json").read_text("utf-8")
        entries = _parse(packaged, "explorer/prices.json")
        if override is not None:
            try:
                text = override.read_text("utf-8")
            except OSError as exc:
                raise PriceTableError(f"cannot read EXPLORER_PRICES {override}: {exc}") from exc
            replacing = _parse(text, str(override))
            replaced = {entry.model for entry in replacing}
            entries = [entry for entry in entries if entry.model not in replaced] + replacing
        return cls(entries)

    def price(self, model: str | None, day: date) -> PriceEntry | None:
        """The entry in effect for ``model`` on ``day``, or None when it is unpriced."""
        if model is None:
            return None
        for entry in self._by_model.get(model, ()):
            if entry.covers(day):
                return entry
        return None

    def cost_usd(self, model: str | None, day: date, tokens: Tokens) -> float | None:
        """What ``tokens`` cost; None when they are not zero and the model is unpriced."""
        if tokens.input == 0 and tokens.output == 0:
            return 0.0
        entry = self.price(model, day)
        if entry is None:
            return None
        cached = min(tokens.cached, tokens.input)
        cached_price = entry.input if entry.cached_input is None else entry.cached_input
        usd_per_unit = (
            (tokens.input - cached) * entry.input
            + cached * cached_price
            + tokens.output * entry.output
        )
        return usd_per_unit / TOKENS_PER_PRICE_UNIT


def _parse(text: str, where: str) -> list[PriceEntry]:
    try:
        return PriceFile.model_validate(json.loads(text)).prices
    except (ValueError, ValidationError) as exc:
        raise PriceTableError(f"{where} is not a valid price table: {exc}") from exc
