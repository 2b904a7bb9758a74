"""The garbage collector set for a long-running service, once start-up is done.

What start-up built (imported libraries, settings, clients) lives as long as the
process: frozen, no later collection walks it. And collections run far less often than
Python's default (every 700 net new container objects): a service holds many young
objects at once (each call in flight, each batch being shipped), which the default
keeps collecting and promoting while they are still in use. Reference counting frees
nearly everything anyway; the collector is only for cycles, which stay rare here.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000
"""Net new container objects between two young collections (Python's default: 700)."""


def settle() -> None:
    """Collect once, freeze what survives, and space out later collections."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
