"""docs/configuration.md and .env.example say what the settings classes say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from explorer.settings import ExplorerSettings
from proxy.settings import ProxySettings
from shipper.settings import ShipperSettings

REPO = Path(__file__).resolve().parent.parent
SCRIPT = "scripts/gen_config_docs.py"


def test_the_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, SCRIPT, "--check"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, (
        f"{result.stderr.strip()}\n(edit the settings class, then run: "
        f".venv/bin/python {SCRIPT})"
    )


def variable(name: str, info: FieldInfo) -> str:
    """The environment variable a field reads: its first alias, else its own name."""
    alias = info.validation_alias
    return str(alias.choices[0] if isinstance(alias, AliasChoices) else name).upper()


def test_every_variable_a_service_reads_is_described_exactly_once() -> None:
    docs = (REPO / "docs" / "configuration.md").read_text()
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|", docs, re.MULTILINE)
    env_example = (REPO / ".env.example").read_text()
    example = re.findall(r"^(?:# )?([A-Z0-9_]+)=", env_example, re.MULTILINE)
    read = {
        variable(name, info)
        for settings in (ProxySettings, ShipperSettings, ExplorerSettings)
        for name, info in settings.model_fields.items()
    }
    assert len(rows) == len(set(rows)), "a variable is described twice"
    assert read <= set(rows), f"not in docs/configuration.md: {read - set(rows)}"
    assert read <= set(example), f"not in .env.example: {read - set(example)}"
