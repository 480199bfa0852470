"""The cyclic garbage collector's settings for a long-running process that ingests reports."""

from __future__ import annotations

import gc
from functools import cache

# Allocations (net of frees) between two young-generation collections; Python's default is 700.
GC_YOUNG_THRESHOLD = 20_000


@cache
def settle_garbage_collector() -> None:
    """Freeze what start-up built and collect less often, once per process.

    With Python's default thresholds the cyclic collector ran often and re-scanned every
    long-lived object (modules, routes, SQLAlchemy metadata) each time: about a third of the
    writer's time. Memory stays flat (ingest creates no cycles to speak of). Once per process
    (@cache): a later app, a test's say, must not freeze the garbage of earlier ones.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
