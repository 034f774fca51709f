"""Where the suite's CPU goes: a pytest plugin, loaded only when asked for.

    PYTHONPATH=tests CPU_ACCOUNT_LOG=/tmp/cpu PYTEST_ADDOPTS="-p cpu_account" make test

appends one JSON line per test to ``$CPU_ACCOUNT_LOG.<worker>``: the node id, its wall time,
the CPU of the pytest worker and the CPU of the children the worker waited for meanwhile
(setup, call and teardown together; a module's or the session's fixtures are torn down in their
last test). A child is counted when it is reaped, so a long-lived one (a Spark JVM, a server a
fixture keeps) lands on whichever test reaps it, and one never reaped is not counted. The
durations pytest prints are wall time only: on two shared cores they cannot tell a test that
works from one that waits.
"""

from __future__ import annotations

import json
import os
import resource
import time

import pytest

_LOG = os.environ.get("CPU_ACCOUNT_LOG")


def _now() -> tuple[float, float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        time.monotonic(),
        own.ru_utime + own.ru_stime,
        children.ru_utime + children.ru_stime,
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = _now()
    yield
    after = _now()
    if _LOG:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        spent = [round(b - a, 3) for a, b in zip(before, after)]
        with open(f"{_LOG}.{worker}", "a") as log:
            log.write(json.dumps([item.nodeid, *spent]) + "\n")
