"""Start ``scripts/run.sh`` with Ctrl-C's signals as a terminal leaves them."""

from __future__ import annotations

import signal


def terminal_signals() -> None:
    """``preexec_fn`` for a child that a test stops with Ctrl-C (SIGINT).

    A test run started in the background (``cmd &`` without job control, ``nohup``, some
    CI runners) ignores SIGINT and SIGQUIT, and its children inherit that. bash cannot trap
    a signal that was ignored when it started, so ``make run`` would never see the test's
    Ctrl-C; from a terminal it always does.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
