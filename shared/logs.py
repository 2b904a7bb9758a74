"""Logging as events: a fixed event name plus fields, as text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_FIELDS = "event_fields"


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` (a fixed snake_case name) with structured ``fields``."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_FIELDS: fields})


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _stamp(self, record: logging.LogRecord) -> str:
        # The date and time are formatted once a second: strftime was a third of a line's cost.
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, _FIELDS, {})
        stamp = self._stamp(record)
        pairs = " ".join([f"{key}={value}" for key, value in fields.items()])
        line = f"{stamp}Z {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, _FIELDS, {}),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class _Redacting(logging.Formatter):
    """Another formatter's line, passed through ``redact`` (whoever logged it)."""

    def __init__(self, inner: logging.Formatter, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._inner = inner
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(self._inner.format(record))


def setup_logging(
    level: str = "INFO", fmt: str = "text", redact: Callable[[str], str] | None = None
) -> None:
    """Send every log to stderr in the chosen format; call once at start-up.

    ``redact``, when given, rewrites every formatted line (the proxy's takes credentials out).
    """
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = _JsonFormatter() if fmt == "json" else _TextFormatter()
    handler.setFormatter(_Redacting(formatter, redact) if redact is not None else formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Neither formatter shows where a call came from, nor which thread or process made it;
    # collecting those costs every log call (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # httpx logs every request URL at INFO; keep the proxy's own events readable.
    logging.getLogger("httpx").setLevel(logging.WARNING)
