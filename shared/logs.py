"""Logging as events: a fixed event name plus fields, as text or one JSON object per line.

``log_event`` hands an event straight to the root logger's handler when that handler is an
``EventSink`` (the proxy's log writer hand-off) and nothing else would see its record: no
``LogRecord`` is made and logging's handler chain is skipped, and the sink writes the
lines its formatters would have written from the record (``EventFormatter``: one
``event_line`` serves both). Any other set-up (a handler added by a test's log capture or
a user's configuration, a filter, a logger that does not propagate, a custom logger or
record class) takes the ordinary way, checked on every call.
"""

from __future__ import annotations

import abc
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

_FIELDS = "event_fields"
_PLAIN_LOGGERS = (logging.Logger, logging.RootLogger)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` (a fixed snake_case name) with structured ``fields``."""
    if not logger.isEnabledFor(level):
        return
    sink = _sole_sink(logger, level)
    if sink is None or not sink.write_event(level, logger.name, event, fields):
        logger.log(level, event, extra={_FIELDS: fields})


class EventSink(logging.Handler):
    """A handler that also takes an event as its parts, without a ``LogRecord``."""

    def write_event(self, level: int, name: str, event: str, fields: dict[str, Any]) -> bool:
        """Write what handling the event's record would; False, having written nothing,
        when it cannot (the event is then logged as a record)."""
        return False


def _sole_sink(logger: logging.Logger, level: int) -> EventSink | None:
    """The root's handler when it is an ``EventSink`` and the only thing a record of
    ``logger`` at ``level`` would reach, as ``Logger.handle`` would route it."""
    handlers = logging.root.handlers
    if len(handlers) != 1:
        return None
    sink = handlers[0]
    if not isinstance(sink, EventSink) or level < sink.level or sink.filters:
        return None
    if logger.filters or type(logger) not in _PLAIN_LOGGERS:
        return None
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    while logger is not logging.root:
        parent = logger.parent
        if logger.handlers or not logger.propagate or parent is None:
            return None
        logger = parent
    return sink


class LogEvent(NamedTuple):
    """An event's parts, all a line is written from: a record's, or ``log_event``'s own."""

    created: float
    """When it was logged (``time.time()``)."""
    levelname: str
    name: str
    """The logger's."""
    event: str
    fields: dict[str, Any]
    exception: str | None = None
    """The formatted traceback, if any."""


class EventFormatter(logging.Formatter, abc.ABC):
    """Formats an event's line from its parts; ``format`` takes them from a record."""

    @abc.abstractmethod
    def event_line(self, event: LogEvent) -> str:
        """The line of ``event``."""

    def format(self, record: logging.LogRecord) -> str:
        exception = self.formatException(record.exc_info) if record.exc_info else None
        fields: dict[str, Any] = getattr(record, _FIELDS, {})
        return self.event_line(
            LogEvent(record.created, record.levelname, record.name, record.getMessage(),
                     fields, exception)
        )


class _Seconds:
    """A whole second's UTC date and time, formatted once a second: ``strftime`` was a
    third of a line's cost. The pair is replaced at once, so threads may share it."""

    def __init__(self) -> None:
        self._cached = (-1, "")

    def text(self, second: int) -> str:
        cached = self._cached
        if cached[0] != second:
            cached = self._cached = (
                second,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
            )
        return cached[1]


_MILLIS = tuple(f"{millis:03d}" for millis in range(1000))
"""Each millisecond as a line shows it: cheaper than formatting it."""


class _TextFormatter(EventFormatter):
    def __init__(self) -> None:
        super().__init__()
        self._seconds = _Seconds()

    def event_line(self, event: LogEvent) -> str:
        second = int(event.created)
        millis = int((event.created - second) * 1000)  # as ``LogRecord.msecs``
        stamp = f"{self._seconds.text(second)}.{_MILLIS[millis]}Z"
        line = f"{stamp} {event.levelname.ljust(7)} {event.name}: {event.event}"
        for key, value in event.fields.items():
            line = f"{line} {key}={value}"
        if event.exception is not None:
            line = f"{line}\n{event.exception}"
        return line


_JSON = json.JSONEncoder(default=str)


class _JsonFormatter(EventFormatter):
    def __init__(self) -> None:
        super().__init__()
        self._seconds = _Seconds()

    def event_line(self, event: LogEvent) -> str:
        payload: dict[str, Any] = {
            "ts": self._iso_utc(event.created),
            "level": event.levelname.lower(),
            "logger": event.name,
            "event": event.event,
            **event.fields,
        }
        if event.exception is not None:
            payload["exception"] = event.exception
        return _JSON.encode(payload)

    def _iso_utc(self, created: float) -> str:
        """``datetime.fromtimestamp(created, UTC).isoformat()``, its rounding included."""
        second = int(created)
        micros = round((created - second) * 1_000_000)
        if micros == 1_000_000:
            second, micros = second + 1, 0
        if micros == 0:
            return f"{self._seconds.text(second)}+00:00"
        return f"{self._seconds.text(second)}.{micros:06d}+00:00"


class _Redacting(EventFormatter):
    """Another formatter's line, passed through ``redact`` (whoever logged it)."""

    def __init__(self, inner: EventFormatter, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._inner = inner
        self._redact = redact

    def event_line(self, event: LogEvent) -> str:
        return self._redact(self._inner.event_line(event))


def setup_logging(
    level: str = "INFO", fmt: str = "text", redact: Callable[[str], str] | None = None
) -> None:
    """Send every log to stderr in the chosen format; call once at start-up.

    ``redact``, when given, rewrites every formatted line (the proxy's takes credentials out).
    """
    handler = logging.StreamHandler(sys.stderr)
    formatter: EventFormatter = _JsonFormatter() if fmt == "json" else _TextFormatter()
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
