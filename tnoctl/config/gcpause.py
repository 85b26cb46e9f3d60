"""Pause Python's cyclic garbage collector while a verb builds many small acyclic objects.

At 35,000 communes a warm `tenant list` decodes 35,000 index records (each a list holding lists
and a dict) and `monitoring targets` builds 175,000 endpoint tuples. Every 700 allocations of
such containers start a collection, and the oldest generation is rescanned each time the heap has
grown by a quarter: measured, that was more than half of decoding the index (issue 18). These
objects hold no reference cycles (JSON values, tuples of strings), so reference counting frees them
and pausing the collector while they are built loses nothing.

The collector is switched back on when the block ends, unless it was already off when it began
(nested blocks and threads: it is never left off by a block that did not turn it off).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; restore its previous state afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
