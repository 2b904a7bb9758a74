"""``python -m proxy``: run the proxy on uvicorn with the settings' host and port.

Subcommands: ``serve`` (the default); ``keys create | list | revoke`` (per-user proxy keys
in Redis, see ``proxy.keys.cli``).
"""

from __future__ import annotations

import argparse
import sys

from proxy.keys import cli as keys_cli
from proxy.log_redaction import setup_redacted_logging
from proxy.serving import serve
from proxy.settings import ProxySettings
from shared.startup import load_settings


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen subcommand."""
    parser = argparse.ArgumentParser(prog="python -m proxy", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the proxy (the default)")
    keys_cli.add_parser(commands)
    args = parser.parse_args(argv)
    settings = load_settings("proxy", ProxySettings, setup_redacted_logging)
    if args.command == "keys":
        sys.exit(keys_cli.run(args, settings))
    if args.command in (None, "serve"):
        refusal = settings.open_relay_refusal()
        if refusal is not None:
            print(refusal, file=sys.stderr)
            sys.exit(2)
        serve(settings)


if __name__ == "__main__":
    main()
