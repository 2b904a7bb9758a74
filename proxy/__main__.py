"""``python -m proxy``: run the proxy on uvicorn with the settings' host and port.

Subcommands: ``serve`` (the default); ``keys create | list | revoke`` (per-user proxy keys
in Redis, see ``proxy.keys.cli``).
"""

from __future__ import annotations

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from proxy.app import create_app
from proxy.keys import cli as keys_cli
from proxy.settings import ProxySettings
from shared.logs import setup_logging
from shared.settings import invalid_configuration

GRACEFUL_SHUTDOWN_S = 30
"""How long uvicorn lets in-flight requests finish on SIGTERM before cutting them."""


def _serve(settings: ProxySettings) -> None:
    uvicorn.run(
        create_app(settings),
        host=settings.proxy_host,
        port=settings.proxy_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # The client sees the upstream's date and server headers, not a second pair.
        server_header=False,
        date_header=False,
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen subcommand."""
    parser = argparse.ArgumentParser(prog="python -m proxy", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the proxy (the default)")
    keys_cli.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        settings = ProxySettings()
    except ValidationError as exc:
        print(invalid_configuration("proxy", exc), file=sys.stderr)
        sys.exit(2)
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "keys":
        sys.exit(keys_cli.run(args, settings))
    if args.command in (None, "serve"):
        _serve(settings)


if __name__ == "__main__":
    main()
