"""``log_event`` with the proxy's logging: straight to the writer hand-off, without a
``LogRecord``, yet the same bytes as a record's line, redacted; any other set-up gets
records as before."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from proxy import log_thread
from proxy.log_redaction import setup_redacted_logging
from proxy.settings import ProxySettings
from shared.logs import log_event

UPSTREAM_KEY = "sk-upstream-SECRET-7f3a9c2e41b8"
PROXY_KEY = "pk-alice-SECRET-8d2e6b40c1"
FIELDS: dict[str, Any] = {
    "method": "POST",
    "path": f"/v1/{UPSTREAM_KEY}/x?api-key={PROXY_KEY}",
    "status": 200,
    "duration_ms": 12.345,
    "record_id": "0193f1c2-1234-7abc-8def-0123456789ab",
    "error": None,
    "note": 'naïve "quoted"\ttext',
    "sizes": [1, 2.5],
}


class _Proxy:
    """The proxy's logging, written to a string; counts the records logging makes."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream
        self.records = 0

    def lines(self) -> list[str]:
        log_thread.stop()
        return self.stream.getvalue().splitlines()


@pytest.fixture
def proxy_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level

    def set_up(fmt: str = "text", level: str = "INFO", handler_level: int = 0) -> _Proxy:
        settings = ProxySettings(
            openai_api_key=UPSTREAM_KEY,
            auth_mode="keys",
            proxy_api_keys=f"{PROXY_KEY}=alice",
            log_format=fmt,
            log_level=level,
        )
        setup_redacted_logging(settings)
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        proxy = _Proxy(io.StringIO())
        handler.setStream(proxy.stream)
        handler.setLevel(handler_level)
        make_record = logging.Logger.makeRecord

        def counting(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
            proxy.records += 1
            return make_record(self, *args, **kwargs)

        monkeypatch.setattr(logging.Logger, "makeRecord", counting)
        log_thread.start()
        return proxy

    yield set_up
    log_thread.stop()
    root.handlers[:] = saved
    root.setLevel(level)


@pytest.fixture
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1_765_011_944.329080
    monkeypatch.setattr(time, "time", lambda: now)
    monkeypatch.setattr(time, "time_ns", lambda: int(now * 1e9))


@pytest.mark.usefixtures("frozen_time")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_event_is_the_same_line_without_a_record(proxy_logging: Any, fmt: str) -> None:
    proxy = proxy_logging(fmt)
    logger = logging.getLogger("proxy.forward")
    log_event(logger, "upstream_request_completed", **FIELDS)
    assert proxy.records == 0
    passing = logging.Filter()  # a filter must see a record: the ordinary way
    logger.addFilter(passing)
    try:
        log_event(logger, "upstream_request_completed", **FIELDS)
    finally:
        logger.removeFilter(passing)
    assert proxy.records == 1

    direct, ordinary = proxy.lines()
    assert direct == ordinary
    assert UPSTREAM_KEY not in direct and PROXY_KEY not in direct
    assert direct.count("[REDACTED]") == 2


def test_a_log_capture_still_gets_every_event(proxy_logging: Any) -> None:
    proxy = proxy_logging()
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    log_event(logging.getLogger("proxy.forward"), "upstream_request_completed", status=200)
    logging.getLogger().removeHandler(capture)

    [record] = capture.records
    assert (record.getMessage(), record.event_fields) == (  # type: ignore[attr-defined]
        "upstream_request_completed",
        {"status": 200},
    )
    assert proxy.records == 1
    assert proxy.lines()[0].endswith("proxy.forward: upstream_request_completed status=200")


def test_caplog_captures_events(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="proxy.forward"):
        log_event(logging.getLogger("proxy.forward"), "upstream_request_completed", status=200)
    assert [r.getMessage() for r in caplog.records] == ["upstream_request_completed"]


def test_a_handler_on_the_way_to_the_root_gets_a_record(proxy_logging: Any) -> None:
    proxy = proxy_logging()
    capture = _Capture()
    parent = logging.getLogger("proxy")
    parent.addHandler(capture)
    try:
        log_event(logging.getLogger("proxy.forward"), "record_spooled", bytes=10)
    finally:
        parent.removeHandler(capture)
    assert len(capture.records) == 1
    assert proxy.lines()[0].endswith("proxy.forward: record_spooled bytes=10")


def test_levels_are_honoured(proxy_logging: Any) -> None:
    proxy = proxy_logging(level="WARNING")
    quiet = logging.getLogger("proxy.quiet")
    quiet.setLevel(logging.ERROR)
    try:
        log_event(logging.getLogger("proxy.forward"), "not_written", level=logging.INFO)
        log_event(logging.getLogger("proxy.forward"), "written", level=logging.WARNING)
        log_event(quiet, "not_written_either", level=logging.WARNING)
        log_event(quiet, "written_too", level=logging.ERROR)
    finally:
        quiet.setLevel(logging.NOTSET)
    lines = proxy.lines()
    assert [line.split()[1:4] for line in lines] == [
        ["WARNING", "proxy.forward:", "written"],
        ["ERROR", "proxy.quiet:", "written_too"],
    ]
    assert proxy.records == 0


@pytest.mark.parametrize("where", ["stream handler", "hand-off"])
def test_a_handlers_level_is_honoured(proxy_logging: Any, where: str) -> None:
    proxy = proxy_logging(handler_level=logging.WARNING if where == "stream handler" else 0)
    if where == "hand-off":
        logging.getLogger().handlers[0].setLevel(logging.WARNING)
    log_event(logging.getLogger("proxy.forward"), "not_written")
    log_event(logging.getLogger("proxy.forward"), "written", level=logging.WARNING)
    assert [line.split()[3] for line in proxy.lines()] == ["written"]


def test_no_line_is_lost_at_stop(proxy_logging: Any) -> None:
    proxy = proxy_logging()
    logger = logging.getLogger("proxy.forward")
    for n in range(1000):
        log_event(logger, "upstream_request_completed", n=n)
    log_thread.stop()
    log_event(logger, "after_stop")  # written at once, as a record

    lines = proxy.stream.getvalue().splitlines()
    assert [line.split()[-1] for line in lines] == [*(f"n={n}" for n in range(1000)), "after_stop"]
    assert proxy.records == 1


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
