"""No credential in a log line, whoever wrote it: the proxy, uvicorn, websockets, aiohttp...

Every formatted line passes through ``LogRedactor`` (``shared.logs.setup_logging`` takes
it), at every ``LOG_LEVEL``. It uses the rules that keep secrets out of records: the
values of credential query parameters (``redacted_query``'s names) and secret headers
(``proxy.headers``) in whatever shape a library prints them (``authorization: Bearer
...``, ``('api-key', '...')``), a key offered as a subprotocol, a URL's password, and
every configured secret wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from proxy.headers import SECRET_HEADERS
from proxy.realtime.handshake import INSECURE_KEY_PROTOCOL
from proxy.redaction import CREDENTIAL_QUERY_PARAMS, MIN_SECRET_CHARS, holds_any
from proxy.settings import ProxySettings
from shared.logs import setup_logging
from shared.record import REDACTED


def _names(names: Iterable[str]) -> str:
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


_QUERY = re.compile(rf"([?&;](?:{_names(CREDENTIAL_QUERY_PARAMS)})=)[^&\s\"'<>;,]+", re.I)
# A header as ``name: value``, ``'name': 'value'`` or ``(b'name', b'value')``: the value
# runs to the end of the line or the closing quote.
_HEADER = re.compile(
    rf"(?<![\w-])((?:{_names(SECRET_HEADERS)})['\"]?\s*[:,]\s*(?:b?['\"])?)[^'\"\r\n]+", re.I
)
_SUBPROTOCOL_KEY = re.compile(rf"({re.escape(INSECURE_KEY_PROTOCOL)})[^,\s'\"]+", re.I)
_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)", re.I)
# A line holds a secret header's name only if it holds one of those no other name contains.
_HEADER_HINTS = tuple(
    name
    for name in SECRET_HEADERS
    if not any(other != name and other in name for other in SECRET_HEADERS)
)
_KEY_PROTOCOL = INSECURE_KEY_PROTOCOL.lower()
_FEW_SECRETS = 16


def _marker(match: re.Match[str]) -> str:
    # A function, not a ``\g<1>`` template: ``re.sub`` hands a template to Python code on
    # every call, even on a line it leaves as it is.
    return f"{match[1]}{REDACTED}"


class LogRedactor:
    """``redactor(line)``: the line with every credential it holds replaced by ``REDACTED``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        known = {secret for secret in secrets if len(secret) >= MIN_SECRET_CHARS}
        self._known = re.compile(_names(known)) if known else None
        # A few substring tests cost less than one scan by the alternation, which then
        # runs only on a line that holds a secret; with many keys, the scan alone.
        self._few = tuple(known) if len(known) <= _FEW_SECRETS else None

    def __call__(self, line: str) -> str:
        # Substring tests first: most lines hold none of these, and scanning every line
        # with every pattern would cost more than formatting it.
        if "=" in line and ("?" in line or "&" in line or ";" in line):
            line = _QUERY.sub(_marker, line)
        lowered = line.lower()
        if holds_any(lowered, _HEADER_HINTS):
            line = _HEADER.sub(_marker, line)
        if _KEY_PROTOCOL in lowered:
            line = _SUBPROTOCOL_KEY.sub(_marker, line)
        if "@" in line and "://" in line:
            line = _PASSWORD.sub(_marker, line)
        if self._known is None:
            return line
        if self._few is not None and not holds_any(line, self._few):
            return line
        return self._known.sub(REDACTED, line)


def setup_redacted_logging(settings: ProxySettings) -> None:
    """``setup_logging`` for the proxy: every line redacted, the configured secrets included."""
    configured = [
        settings.openai_api_key,
        settings.passthrough_user_id_secret,
    ]
    secrets = [
        *(secret.get_secret_value() for secret in configured if secret is not None),
        *(key for key, _ in settings.static_key_pairs),
        *settings.upstream_base.secrets,
    ]
    setup_logging(settings.log_level, settings.log_format, LogRedactor(secrets))
