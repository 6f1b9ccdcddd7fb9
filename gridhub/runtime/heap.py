"""Garbage-collector settings for the long-running hub processes.

CPython's cyclic collector walks every tracked object on each full
collection. After start-up a hub process holds hundreds of thousands of
long-lived objects (the grid map, its address index, imported modules), and
the hot path allocates many short-lived dicts per record, which triggers
collections constantly: measured on the benchmark, full collections cost the
merge process about a tenth of its time. Freezing the start-up heap takes it
out of every later collection, and a larger first threshold collects young
objects less often (the hot path creates no reference cycles to speak of).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Allocations between young collections (CPython's default is 700)."""


def freeze_startup_heap() -> None:
    """Collect once, move everything alive into the permanent generation, and
    collect less often from now on. Call when start-up is done, before the hot path."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
