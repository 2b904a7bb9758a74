"""Prices per model and day, from ``prices.json`` in this package and ``EXPLORER_PRICES``.

The packaged table is built by ``scripts/build_prices.py`` from a maintained public source
named in every entry's ``source``. Token prices are USD per 1M tokens: text ``input``,
``cached_input`` and ``output`` (reasoning tokens are output), ``audio_input``,
``cached_audio_input``, ``audio_output`` and ``image_input``; ``tiers`` holds the text
prices of the ``flex``, ``priority`` and ``batch`` service tiers. Other units:
``per_audio_minute`` (transcription), ``per_million_characters`` (speech) and
``per_image`` keyed ``quality/WIDTHxHEIGHT`` or ``WIDTHxHEIGHT``. Each entry is effective
on the UTC days from ``effective_from`` (inclusive) to ``effective_to`` (exclusive).

An override file has the same format; its entries for a model replace the packaged ones.
A dated snapshot (``gpt-4o-2024-08-06``) takes its own entry, else its base model's
(``gpt-4o``), and the quote says which. A call is priced whole or not at all: when one of
its units has no price, the quote names what is missing and carries no cost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

TOKENS_PER_PRICE_UNIT = 1_000_000
STANDARD_TIERS = frozenset({"default", "auto", "standard"})
_SNAPSHOT = re.compile(r"^(?P<base>.+?)-(?:\d{4}-\d{2}-\d{2}|\d{4})$")

Price = float | None


class TierPrice(BaseModel):
    """Text-token prices of one service tier (USD per 1M tokens)."""

    input: Price = Field(default=None, ge=0)
    cached_input: Price = Field(default=None, ge=0)
    output: Price = Field(default=None, ge=0)


class PriceEntry(TierPrice):
    """One line of the price table."""

    model: str = Field(min_length=1)
    provider: str = "openai"
    audio_input: Price = Field(default=None, ge=0)
    cached_audio_input: Price = Field(default=None, ge=0)
    audio_output: Price = Field(default=None, ge=0)
    image_input: Price = Field(default=None, ge=0)
    per_audio_minute: Price = Field(default=None, ge=0)
    per_million_characters: Price = Field(default=None, ge=0)
    per_image: dict[str, float] = Field(default_factory=dict)
    tiers: dict[str, TierPrice] = Field(default_factory=dict)
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


@dataclass(frozen=True, slots=True)
class Usage:
    """What some calls of one model, tier and image kind used, in every priced unit.

    As OpenAI reports them, ``input`` includes the cached, audio and image input tokens,
    ``cached`` includes ``cached_audio_input``, and ``output`` includes ``audio_output``
    and the reasoning tokens.
    """

    input: int = 0
    cached: int = 0
    output: int = 0
    audio_input: int = 0
    cached_audio_input: int = 0
    audio_output: int = 0
    image_input: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    images: int = 0
    image_size: str | None = None
    image_quality: str | None = None
    service_tier: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (
            self.input or self.output or self.audio_seconds or self.characters or self.images
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of a ``Usage``: ``usd`` is None when ``missing`` names an unpriced unit."""

    usd: float | None
    entry: PriceEntry | None = None
    priced_as: str | None = None
    """The model whose price was used, when it is not the call's own (a snapshot's base)."""
    missing: list[str] = field(default_factory=list)


def base_model(model: str) -> str | None:
    """The model a dated snapshot belongs to (``gpt-4o-2024-08-06`` → ``gpt-4o``), or None."""
    match = _SNAPSHOT.match(model)
    return match["base"] if match else None


def _image_keys(usage: Usage) -> list[str]:
    size = usage.image_size or "1024x1024"  # the Images API's default size
    if usage.image_quality:
        return [f"{usage.image_quality}/{size}", size]
    return [size, f"standard/{size}"]


def _amounts(entry: PriceEntry, usage: Usage) -> list[tuple[str, float, Price]]:
    """(unit, quantity in the price's unit, price) for every unit ``usage`` has."""
    tier = usage.service_tier
    text: TierPrice = entry
    suffix = ""
    if tier is not None and tier not in STANDARD_TIERS:
        text = entry.tiers.get(tier) or TierPrice()
        suffix = f" ({tier} tier)"
    cached = min(usage.cached, usage.input)
    cached_audio = min(usage.cached_audio_input, cached)
    cached_text = cached - cached_audio
    audio_in = max(usage.audio_input - cached_audio, 0)
    text_in = max(usage.input - cached - audio_in - usage.image_input, 0)
    text_out = max(usage.output - usage.audio_output, 0)
    per_token = 1 / TOKENS_PER_PRICE_UNIT
    image_price = next(
        (entry.per_image[key] for key in _image_keys(usage) if key in entry.per_image), None
    )
    rows = [
        ("input tokens" + suffix, text_in * per_token, text.input),
        (
            "cached input tokens" + suffix,
            cached_text * per_token,
            text.input if text.cached_input is None else text.cached_input,
        ),
        ("output tokens" + suffix, text_out * per_token, text.output),
        ("audio input tokens", audio_in * per_token, entry.audio_input),
        (
            "cached audio input tokens",
            cached_audio * per_token,
            entry.audio_input if entry.cached_audio_input is None else entry.cached_audio_input,
        ),
        ("audio output tokens", usage.audio_output * per_token, entry.audio_output),
        ("image input tokens", usage.image_input * per_token, entry.image_input),
        ("audio minutes", usage.audio_seconds / 60, entry.per_audio_minute),
        ("characters", usage.characters * per_token, entry.per_million_characters),
        (f"images {_image_keys(usage)[0]}", float(usage.images), image_price),
    ]
    return [row for row in rows if row[1] > 0]


def units_of(usage: Usage) -> list[str]:
    """The names of the units ``usage`` has (what an unknown model leaves unpriced)."""
    return [unit for unit, _, _ in _amounts(PriceEntry(model="-", source="-"), usage)]


class PriceTable:
    """Looks up the price of a model on a day and prices what calls used."""

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

    def _own(self, model: str, day: date) -> PriceEntry | None:
        return next((e for e in self._by_model.get(model, ()) if e.covers(day)), None)

    def resolve(self, model: str | None, day: date) -> tuple[PriceEntry, str | None] | None:
        """The entry for ``model`` on ``day`` and, when it is the base model's, that name."""
        if model is None:
            return None
        if (entry := self._own(model, day)) is not None:
            return entry, None
        base = base_model(model)
        if base is not None and (entry := self._own(base, day)) is not None:
            return entry, base
        return None

    def price(self, model: str | None, day: date) -> PriceEntry | None:
        """The entry in effect for ``model`` on ``day`` (its own or its base model's)."""
        resolved = self.resolve(model, day)
        return None if resolved is None else resolved[0]

    def quote(self, model: str | None, day: date, usage: Usage) -> Quote:
        """What ``usage`` of ``model`` cost on ``day``, or which of its units are unpriced."""
        if usage.is_empty:
            return Quote(0.0)
        resolved = self.resolve(model, day)
        if resolved is None:
            return Quote(None, missing=units_of(usage))
        entry, priced_as = resolved
        amounts = _amounts(entry, usage)
        missing = [unit for unit, _, price in amounts if price is None]
        if missing:
            return Quote(None, entry, priced_as, missing)
        usd = sum(quantity * (price or 0.0) for _, quantity, price in amounts)
        return Quote(usd, entry, priced_as)

    def cost_usd(self, model: str | None, day: date, tokens: Tokens) -> float | None:
        """What ``tokens`` cost; None when they are not zero and the model is unpriced."""
        usage = Usage(input=tokens.input, output=tokens.output, cached=tokens.cached)
        return self.quote(model, day, usage).usd


def _parse(text: str, where: str) -> list[PriceEntry]:
    try:
        return PriceFile.model_validate(json.loads(text)).prices
    except (ValueError, ValidationError) as exc:
        raise PriceTableError(f"{where} is not a valid price table: {exc}") from exc
