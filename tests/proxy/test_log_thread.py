"""The log writer thread: lines formatted where they are logged, written in order, never
blocking the caller on a slow stream."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator

import pytest

from proxy import log_thread


class _BlockingStream(io.StringIO):
    """A stream whose writes wait until ``release`` is set, like a full pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(10)
        return super().write(text)


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    logger = logging.getLogger()
    saved, level = logger.handlers[:], logger.level
    logger.setLevel(logging.DEBUG)
    yield logger
    log_thread.stop()
    logger.handlers[:] = saved
    logger.setLevel(level)


def _handler(
    stream: io.StringIO, level: int = logging.NOTSET
) -> logging.StreamHandler[io.StringIO]:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.setLevel(level)
    return handler


def test_lines_are_written_in_order_with_each_handlers_level(root: logging.Logger) -> None:
    everything, warnings = io.StringIO(), io.StringIO()
    root.handlers[:] = [_handler(everything), _handler(warnings, logging.WARNING)]
    log_thread.start()
    log = logging.getLogger("test.log_thread")
    for n in range(200):
        log.info("line %d", n)
    log.warning("last")
    log_thread.stop()

    assert everything.getvalue().splitlines() == [
        *(f"INFO line {n}" for n in range(200)), "WARNING last"
    ]
    assert warnings.getvalue().splitlines() == ["WARNING last"]
    assert [type(h) for h in root.handlers] == [logging.StreamHandler, logging.StreamHandler]


def test_a_line_is_formatted_when_logged_not_when_written(root: logging.Logger) -> None:
    stream = _BlockingStream()
    stream.release.set()
    root.handlers[:] = [_handler(stream)]
    log_thread.start()
    fields = ["before"]
    logging.getLogger("test").info("value %s", fields)
    fields[0] = "after"  # changed before the writer could run: the line keeps the old value
    log_thread.stop()
    assert stream.getvalue() == "INFO value ['before']\n"


def test_a_stalled_stream_does_not_block_the_caller(root: logging.Logger) -> None:
    stream = _BlockingStream()
    root.handlers[:] = [_handler(stream)]
    log_thread.start()
    log = logging.getLogger("test")
    log.info("first")
    assert stream.entered.wait(5)  # the writer is stuck in write()
    for n in range(100):
        log.info("queued %d", n)  # returns although nothing can be written
    stream.release.set()
    log_thread.stop()
    queued = [f"INFO queued {n}" for n in range(100)]
    assert stream.getvalue().splitlines() == ["INFO first", *queued]


def test_a_line_that_cannot_be_formatted_is_reported_and_the_rest_written(
    root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    root.handlers[:] = [_handler(stream)]
    log_thread.start()
    log = logging.getLogger("test")
    log.info("good")
    log.info("bad %d", "not a number")
    log.info("also good")
    log_thread.stop()
    assert stream.getvalue().splitlines() == ["INFO good", "INFO also good"]
    assert "--- Logging error ---" in capsys.readouterr().err
