"""Write ``docs/configuration.md`` and ``.env.example`` from the settings classes.

Usage::

    .venv/bin/python scripts/gen_config_docs.py           # rewrite both files
    .venv/bin/python scripts/gen_config_docs.py --check   # exit 1 when either is stale

Each variable's meaning is its field's docstring (or ``Field(description=...)``), its
default the field's default, so a setting is described in one place: its class. The few
variables no settings class reads (``make run``'s, compose's) are listed below by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# The project is installed into .venv (editable), so its packages import as they are.
from explorer.settings import ExplorerSettings
from proxy.settings import ProxySettings
from shared.settings import CommonSettings, StorageSettings
from shipper.settings import ShipperSettings

REPO = Path(__file__).resolve().parent.parent

DOCS = REPO / "docs" / "configuration.md"
ENV_EXAMPLE = REPO / ".env.example"
COMMAND = ".venv/bin/python scripts/gen_config_docs.py"


@dataclass(frozen=True)
class Section:
    """One table: the fields ``settings`` adds to ``base`` (all of them without a base)."""

    title: str
    readers: str
    settings: type[BaseModel]
    base: type[BaseModel] | None


SECTIONS = (
    Section(
        "Shared",
        "every service and command: the proxy, the shipper, the explorer, `proxy keys`, "
        "`shipper status`",
        CommonSettings,
        None,
    ),
    Section("Storage", "the shipper and the explorer", StorageSettings, CommonSettings),
    Section("Proxy", "`python -m proxy` and `python -m proxy keys`", ProxySettings, CommonSettings),
    Section("Shipper", "`python -m shipper` and its commands", ShipperSettings, StorageSettings),
    Section("Explorer", "`python -m explorer`", ExplorerSettings, StorageSettings),
)

# A default computed at start-up, shown as what it looks like.
COMPUTED_DEFAULTS = {"SHIPPER_CONSUMER_NAME": "host-pid-random"}

# Examples that differ from the default, written commented out in .env.example.
COMMENTED_EXAMPLES = {
    "PROXY_BIND": "127.0.0.1",
    "PROMETHEUS_MULTIPROC_DIR": "/run/proxy-metrics",
}

# Read by `make run` (scripts/run.sh), not by a service: (variable, default, meaning).
MAKE_RUN = (
    (
        "RUN_SHIP_TIMEOUT_S",
        "60",
        "After Ctrl-C, how long `make run` lets the shipper ship what is left before it "
        "stops it.",
    ),
)

# Read by docker compose itself, with their defaults; their meaning is in CONTAINER.md,
# "Configure" (the one place that documents them).
COMPOSE = (
    ("PROXY_HOST_PORT", "8000"),
    ("PROXY_TLS_HOST_PORT", "8443"),
    ("TLS_CERT_FILE", "./deploy/tls/proxy.pem"),
    ("LB_STATS_HOST_PORT", "8404"),
    ("EXPLORER_HOST_PORT", "8080"),
    ("AZURITE_HOST_PORT", "10000"),
    ("APP_UID", "10001"),
    ("APP_GID", "10001"),
)


@dataclass(frozen=True)
class Variable:
    """One environment variable of a settings class."""

    name: str
    default: str
    """As written in ``.env``; empty for a secret or no default."""
    shown_default: str
    """As shown in the docs."""
    meaning: str


def env_name(name: str, info: FieldInfo) -> str:
    """The variable's name: the first alias when the field has some, else the field's name."""
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0]).upper()
    return (alias if isinstance(alias, str) else name).upper()


def former_names(name: str, info: FieldInfo) -> list[str]:
    """Other names the variable is still read under."""
    alias = info.validation_alias
    if not isinstance(alias, AliasChoices):
        return []
    return [str(choice).upper() for choice in alias.choices[1:]]


def plain(value: Any) -> str:
    """A default as it is written in ``.env``."""
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def with_unit(name: str, value: str) -> str:
    """``16777216 (16 MiB)``, ``259200 (3 days)``: large defaults read at a glance."""
    if not value.isdigit():
        return value
    number = int(value)
    if name.endswith("_BYTES"):
        for size, unit in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
            if number >= size and number % size == 0:
                return f"{value} ({number // size} {unit})"
    if name.endswith("_S") and number >= 3600 and number % 3600 == 0:
        hours = number // 3600
        return f"{value} ({hours // 24} days)" if hours % 24 == 0 else f"{value} ({hours} h)"
    return value


def markdown(text: str) -> str:
    """A docstring as one Markdown line: RST ``code`` becomes `code`."""
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|")


def linked(text: str) -> str:
    """``docs/keys.md`` in a meaning as a link, for a page that is itself in docs/."""
    return re.sub(r"\bdocs/([a-z-]+\.md)\b", r"[\1](\1)", text)


def variables(section: Section) -> list[Variable]:
    """The variables ``section.settings`` adds to its base, in the class's order.

    A variable an earlier section already lists (the proxy's ``STORAGE_TYPE``) is left out:
    each variable is described once.
    """
    inherited = section.base.model_fields if section.base else {}
    earlier = {
        env_name(name, info)
        for before in SECTIONS[: SECTIONS.index(section)]
        for name, info in before.settings.model_fields.items()
    }
    found = []
    for name, info in section.settings.model_fields.items():
        variable = env_name(name, info)
        if name in inherited or variable in earlier:
            continue
        if info.description is None:
            raise SystemExit(f"{section.settings.__name__}.{name} has no docstring")
        secret = info.annotation is not None and "SecretStr" in str(info.annotation)
        if info.default is PydanticUndefined:
            value, shown = "", COMPUTED_DEFAULTS[variable]
        else:
            value = plain(info.default)
            shown = "—" if secret or value == "" else with_unit(variable, value)
        meaning = markdown(info.description)
        formers = former_names(name, info)
        if formers:
            meaning += " Its former name " + ", ".join(f"`{former}`" for former in formers)
            meaning += " still works."
        found.append(Variable(variable, "" if secret else value, shown, meaning))
    return found


def configuration_md() -> str:
    """``docs/configuration.md``."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated by scripts/gen_config_docs.py from the settings classes: edit a",
        f"field's docstring there, then run `{COMMAND}`. -->",
        "",
        "Every service reads its settings from the environment and from `.env` in the",
        "working directory; the environment wins. An empty value counts as unset (the",
        "default applies), so a copy of `.env.example` with blanks keeps the defaults.",
        "Durations and sizes carry their unit in the name (`_S`, `_MS`, `_BYTES`). A service",
        "whose configuration is invalid exits with status 2 and one line naming each bad",
        "variable, never its value. `.env.example` lists the same variables, grouped as here.",
        "",
    ]
    for section in SECTIONS:
        out += [f"## {section.title}", "", f"Read by {section.readers}.", ""]
        out += ["| variable | default | meaning |", "|---|---|---|"]
        for var in variables(section):
            default = var.shown_default if var.shown_default == "—" else f"`{var.shown_default}`"
            out.append(f"| `{var.name}` | {default} | {linked(var.meaning)} |")
        out.append("")
    out += [
        "## `make run`",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
        *(f"| `{name}` | `{default}` | {meaning} |" for name, default, meaning in MAKE_RUN),
        "",
        "## Docker compose",
        "",
        "Compose sets a few of the variables above itself (where the containers find each",
        "other) and reads its own (host ports, the uid the containers run as): both are in",
        "[CONTAINER.md](../CONTAINER.md#configure).",
        "",
    ]
    return "\n".join(out)


NO_BREAK = "\0"
"""Stands for a space that must not end a line (``(16 MiB)``) until the text is wrapped."""


def comment(text: str) -> list[str]:
    """``text`` as ``#`` lines of at most 90 characters."""
    lines = textwrap.wrap(text.replace("`", ""), width=88)
    return [f"# {line.replace(NO_BREAK, ' ')}" for line in lines]


def env_example() -> str:
    """``.env.example``."""
    out = [
        "# Copy to .env and edit. Only OPENAI_API_KEY must be set (sk-...), and with",
        "# AUTH_MODE=passthrough not even that; every other value here is its default.",
        "# Secrets are left empty. Each variable in full: docs/configuration.md.",
        f"# Generated by scripts/gen_config_docs.py: edit the settings classes, then run {COMMAND}",
    ]
    for section in SECTIONS:
        out += ["", f"# --- {section.title.lower()} ---"]
        for var in variables(section):
            unit = with_unit(var.name, var.default)[len(var.default) :].strip()  # "(16 MiB)"
            meaning = f"{var.meaning} {unit.replace(' ', NO_BREAK)}" if unit else var.meaning
            out += ["", *comment(meaning)]
            if var.name in COMMENTED_EXAMPLES:
                out.append(f"# {var.name}={COMMENTED_EXAMPLES[var.name]}")
            else:
                out.append(f"{var.name}={var.default}")
    out += ["", "# --- make run ---"]
    for name, default, meaning in MAKE_RUN:
        out += ["", *comment(meaning), f"{name}={default}"]
    out += [
        "",
        "# --- docker compose only; the services ignore these. Each in CONTAINER.md, Configure.",
        "# APP_UID/APP_GID: the uid/gid the containers run as and that owns ./logs ($(id -u)).",
        *(f"{name}={default}" for name, default in COMPOSE),
    ]
    return "\n".join(out) + "\n"


def generated() -> dict[Path, str]:
    """Each generated file and what it must hold."""
    return {DOCS: configuration_md(), ENV_EXAMPLE: env_example()}


def main(argv: list[str] | None = None) -> int:
    """Write the files, or with ``--check`` name the stale ones and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether they are stale")
    args = parser.parse_args(argv)
    stale = [path for path, text in generated().items() if not _holds(path, text)]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is stale: run {COMMAND}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated().items():
        path.write_text(text, encoding="utf-8")
    return 0


def _holds(path: Path, text: str) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") == text


if __name__ == "__main__":
    sys.exit(main())
