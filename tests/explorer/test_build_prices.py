"""scripts/build_prices.py turns LiteLLM's price map into the explorer's table, with its source."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from explorer.prices import PriceTable

REPO = Path(__file__).resolve().parents[2]
SOURCE: dict[str, Any] = {
    "sample_spec": {"litellm_provider": "one of …", "input_cost_per_token": 0.0},
    "gpt-4o": {
        "litellm_provider": "openai",
        "input_cost_per_token": 2.5e-06,
        "cache_read_input_token_cost": 1.25e-06,
        "output_cost_per_token": 1e-05,
        "input_cost_per_token_batches": 1.25e-06,
        "output_cost_per_token_batches": 5e-06,
    },
    "gpt-4o-mini-audio-preview": {
        "litellm_provider": "openai",
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": 6e-07,
        "input_cost_per_audio_token": 1e-05,
        "output_cost_per_audio_token": 2e-05,
    },
    "whisper-1": {"litellm_provider": "openai", "input_cost_per_second": 0.0001},
    "tts-1": {"litellm_provider": "openai", "input_cost_per_character": 1.5e-05},
    "1024-x-1024/dall-e-2": {"litellm_provider": "openai", "input_cost_per_pixel": 1.9e-08},
    "hd/1024-x-1792/dall-e-3": {"litellm_provider": "openai", "input_cost_per_image": 0.12},
    "azure/gpt-4o": {"litellm_provider": "azure", "input_cost_per_token": 9e-06},
    "azure/gpt-35-turbo": {
        "litellm_provider": "azure",
        "input_cost_per_token": 5e-07,
        "output_cost_per_token": 1.5e-06,
    },
    "azure/eu/gpt-35-turbo": {"litellm_provider": "azure", "input_cost_per_token": 9e-06},
    "ft:gpt-4o-mini-2024-07-18": {"litellm_provider": "openai", "input_cost_per_token": 3e-07},
    "claude-3-opus": {"litellm_provider": "anthropic", "input_cost_per_token": 1.5e-05},
}


def _build(tmp_path: Path) -> tuple[dict[str, Any], Path, bytes]:
    source = json.dumps(SOURCE, indent=4).encode()
    (tmp_path / "map.json").write_bytes(source)
    out = tmp_path / "prices.json"
    subprocess.run(
        [sys.executable, "scripts/build_prices.py", str(tmp_path / "map.json"),
         "--ref", "BerriAI/litellm abc123", "--out", str(out)],
        cwd=REPO, check=True, capture_output=True, timeout=60,
    )
    return json.loads(out.read_text()), out, source


def test_every_unit_is_converted_to_the_explorers(tmp_path: Path) -> None:
    table, _, _ = _build(tmp_path)
    by_model = {entry["model"]: entry for entry in table["prices"]}

    assert by_model["gpt-4o"]["input"] == 2.5
    assert by_model["gpt-4o"]["cached_input"] == 1.25
    assert by_model["gpt-4o"]["output"] == 10.0
    assert by_model["gpt-4o"]["tiers"] == {"batch": {"input": 1.25, "output": 5.0}}
    assert by_model["gpt-4o-mini-audio-preview"]["audio_input"] == 10.0
    assert by_model["gpt-4o-mini-audio-preview"]["audio_output"] == 20.0
    assert by_model["whisper-1"]["per_audio_minute"] == 0.006
    assert by_model["tts-1"]["per_million_characters"] == 15.0
    assert by_model["dall-e-2"]["per_image"] == {"1024x1024": round(1.9e-08 * 1024 * 1024, 6)}
    assert by_model["dall-e-3"]["per_image"] == {"hd/1024x1792": 0.12}


def test_only_openai_and_azure_global_prices_are_kept(tmp_path: Path) -> None:
    table, _, _ = _build(tmp_path)
    kept = {(entry["model"], entry["provider"]) for entry in table["prices"]}

    assert ("gpt-4o", "openai") in kept and ("gpt-4o", "azure") not in kept
    assert ("gpt-35-turbo", "azure") in kept
    assert not any(
        name.startswith(("ft:", "eu/", "claude")) or name == "sample_spec" for name, _ in kept
    )


def test_every_entry_names_its_source_ref_and_the_files_digest(tmp_path: Path) -> None:
    table, out, source = _build(tmp_path)
    digest = hashlib.sha256(source).hexdigest()

    assert all(
        "BerriAI/litellm abc123" in entry["source"] and digest in entry["source"]
        for entry in table["prices"]
    )
    loaded = PriceTable.load(override=out).price("gpt-4o", date(2026, 1, 1))
    assert loaded is not None and loaded.input == 2.5


def test_the_packaged_table_names_a_release_and_a_digest() -> None:
    packaged = json.loads((REPO / "explorer" / "prices.json").read_text())

    assert len(packaged["prices"]) >= 150
    assert all("sha256 " in entry["source"] and "release" in entry["source"]
               for entry in packaged["prices"])
