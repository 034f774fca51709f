"""Under ``pytest -n 2``, every test that uses Spark runs in one worker, so one JVM starts.

Each process starts its own local Spark session on first use (tests/spark_fixtures.py): its JVM
costs about 15 core-seconds to start and warm up before any test's work, and each worker that
met a Spark test paid for one. ``--dist worksteal`` hands each worker one contiguous half of
the collection and steals from the end of a worker's queue, so the modules holding a test that
uses the ``spark`` fixture are moved, whole and in their order, to the start of the
collection: the worker given the first half runs them all, first, and the other never steals
them (by then they have run). Whole modules, so that their module-scoped fixtures are still
built once and torn down when the module ends. (In a run of a few modules where those are more
than half of the tests, the first half cannot hold them all and two JVMs start, as before.)

In an xdist worker only: without ``-n`` the order is the one pytest collected, so a run with
``-n0`` also checks that nothing depends on the new order. Both workers compute the same order
from the same collection (xdist refuses to run when the two disagree).
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput"):
        return
    spark_modules = {item.path for item in items if "spark" in getattr(item, "fixturenames", ())}
    if not spark_modules:
        return
    first = [item for item in items if item.path in spark_modules]
    rest = [item for item in items if item.path not in spark_modules]
    items[:] = first + rest
