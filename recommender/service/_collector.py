"""The cyclic garbage collector held off while a batch's answers are built.

A 1,000-row batch makes some 80,000 container objects (answers, their rankings and
explanations, audit records) that all stay alive until the batch is answered. With the
collector's default threshold that is about a hundred young collections per batch, each
walking the objects made since the last, and a middle or full collection nearly every batch
that walks them again: about 14 ms of collections per batch of the demo model, a tenth of its
CPU, for objects of which none is garbage until the batch is answered. Held off, they are
walked at most once, by the first collection after the batch (not at all when they are freed
before it: the objects' count falls as they are).

Nothing of an answer depends on when the collector runs; the collector's switch is the
process's, so concurrent batches share one hold: the first in turns the collector off (if it
was on), the last out turns it on again. Objects freed by reference counting (nearly all) are
freed as before; only garbage in reference cycles waits, and while batches keep overlapping
without a gap the young objects are still collected once more than ``_MOST_DEFERRED`` of them
are waiting.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

__all__ = ["collector_held"]

# Young container objects left waiting for collection before an overlapping batch collects
# them anyway (about 12 batches of 1,000 rows).
_MOST_DEFERRED = 1_000_000

_LOCK = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def collector_held():
    """Hold the cyclic garbage collector off for the ``with`` block (see the module's text).

    >>> import gc
    >>> with collector_held():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    global _holders, _was_enabled
    with _LOCK:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _LOCK:
            _holders -= 1
            last = _holders == 0
            if last and _was_enabled:
                gc.enable()
            overdue = not last and _was_enabled and gc.get_count()[0] > _MOST_DEFERRED
        if overdue:  # outside the lock: a finalizer run by the collection may hold it off too
            gc.collect(1)
