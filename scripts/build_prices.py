"""Build ``explorer/prices.json`` from LiteLLM's model price map.

Usage::

    python scripts/build_prices.py PATH/TO/model_prices_and_context_window.json \\
        --ref "BerriAI/litellm <commit or release>" [--out explorer/prices.json]

The input is LiteLLM's ``model_prices_and_context_window.json`` (or the copy its Python
package ships as ``litellm/model_prices_and_context_window_backup.json``); ``--ref`` names
the commit or release it was read at and goes, with the file's sha256, into every entry's
``source``: anyone can check that a table was built from the file it names. Nothing is
downloaded: the file is read from the path given, so the build is repeatable offline.

Kept: OpenAI's API models (``litellm_provider`` ``openai`` or ``text-completion-openai``)
and Azure OpenAI's (``azure/<name>``, global deployments; regional ``azure/eu/...`` prices
are left out) where OpenAI has no entry of that name. Prices are converted from LiteLLM's
USD per token, second, character and pixel into the explorer's units (see ``explorer/prices.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

PER_MILLION = 1_000_000
OPENAI_PROVIDERS = ("openai", "text-completion-openai")
_IMAGE_KEY = re.compile(r"^(?:(?P<quality>[a-z]+)/)?(?P<w>\d+)-x-(?P<h>\d+)/(?P<model>[^/]+)$")
_TIERS = {"flex": "_flex", "priority": "_priority", "batch": "_batches"}


def _per_million(value: Any) -> float | None:
    # Rounded to cents of a micro-dollar: LiteLLM's floats (2.5e-06) carry binary noise.
    return None if not isinstance(value, int | float) else round(value * PER_MILLION, 6)


def _token_prices(raw: dict[str, Any], suffix: str = "") -> dict[str, float]:
    fields = {
        "input": raw.get("input_cost_per_token" + suffix),
        "cached_input": raw.get("cache_read_input_token_cost" + suffix),
        "output": raw.get("output_cost_per_token" + suffix)
        if "output_cost_per_token" + suffix in raw
        else raw.get("output_cost_per_image_token" + suffix),
    }
    if not suffix:
        fields |= {
            "audio_input": raw.get("input_cost_per_audio_token"),
            "cached_audio_input": raw.get("cache_read_input_audio_token_cost"),
            "audio_output": raw.get("output_cost_per_audio_token"),
            "image_input": raw.get("input_cost_per_image_token"),
        }
    return {
        key: price for key, value in fields.items() if (price := _per_million(value)) is not None
    }


def _entry(name: str, provider: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    entry: dict[str, Any] = {"model": name, "provider": provider} | _token_prices(raw)
    if isinstance(raw.get("input_cost_per_second"), int | float):
        entry["per_audio_minute"] = round(raw["input_cost_per_second"] * 60, 6)
    if isinstance(raw.get("input_cost_per_character"), int | float):
        entry["per_million_characters"] = _per_million(raw["input_cost_per_character"])
    tiers = {
        tier: prices
        for tier, suffix in _TIERS.items()
        if (prices := _token_prices(raw, suffix)).keys() & {"input", "output"}
    }
    if tiers:
        entry["tiers"] = tiers
    return entry if len(entry) > 2 else None


def _image_price(raw: dict[str, Any], width: int, height: int) -> float | None:
    if isinstance(raw.get("input_cost_per_image"), int | float):
        return float(raw["input_cost_per_image"])
    if isinstance(raw.get("input_cost_per_pixel"), int | float):
        return round(raw["input_cost_per_pixel"] * width * height, 6)
    return None


def build(source: bytes, ref: str) -> dict[str, Any]:
    """The explorer's price file for LiteLLM's map ``source`` (the file's bytes) read at ``ref``."""
    digest = hashlib.sha256(source).hexdigest()
    note = f"LiteLLM model_prices_and_context_window.json ({ref}; sha256 {digest})"
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    images: dict[tuple[str, str], dict[str, float]] = {}
    for key, raw in sorted(json.loads(source).items()):
        if not isinstance(raw, dict):
            continue
        provider = raw.get("litellm_provider")
        if provider in OPENAI_PROVIDERS:
            name, kind = key, "openai"
        elif provider == "azure" and key.startswith("azure/"):
            name, kind = key.removeprefix("azure/"), "azure"
        else:
            continue
        if (match := _IMAGE_KEY.match(name)) is not None:
            width, height = int(match["w"]), int(match["h"])
            if (price := _image_price(raw, width, height)) is not None:
                size = f"{width}x{height}"
                label = f"{match['quality']}/{size}" if match["quality"] else size
                images.setdefault((kind, match["model"]), {})[label] = price
            continue
        if "/" in name or name.startswith("ft:"):
            continue  # regional Azure prices, fine-tuned models: not a model name a record carries
        if (entry := _entry(name, kind, raw)) is not None:
            entries[(kind, name)] = entry
    for (kind, name), per_image in images.items():
        entry = entries.setdefault((kind, name), {"model": name, "provider": kind})
        entry["per_image"] = dict(sorted(per_image.items()))
    openai_names = {name for kind, name in entries if kind == "openai"}
    prices = [
        entry | {"effective_from": None, "effective_to": None, "source": note}
        for (kind, name), entry in sorted(entries.items(), key=lambda item: item[0][1])
        if kind == "openai" or name not in openai_names
    ]
    return {
        "unit": "USD per 1,000,000 tokens (per_audio_minute: per minute of audio; "
        "per_million_characters: per 1M characters; per_image: per image)",
        "about": "Prices the explorer applies at query time, built by scripts/build_prices.py "
        "from " + note + ". effective_from is inclusive, effective_to exclusive (UTC days); "
        "null means open-ended. Override or extend with EXPLORER_PRICES (same format; its "
        "entries for a model replace these).",
        "prices": prices,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source", type=Path, help="LiteLLM's model price map (JSON)")
    parser.add_argument("--ref", required=True, help="the commit or release it was read at")
    parser.add_argument("--out", type=Path, default=Path("explorer/prices.json"))
    args = parser.parse_args(argv)
    table = build(args.source.read_bytes(), args.ref)
    args.out.write_text(json.dumps(table, indent=2) + "\n", "utf-8")
    print(f"{len(table['prices'])} models written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
