"""The service's own Prometheus metrics, beside BentoML's per-route request counts.

What an operator watches that BentoML cannot count: crisis answers (and where each was
recorded), audit-store write failures, which model version each worker serves, and the answers
given before BentoML's layers (a path the service does not serve, scanned by the thousand, is
one series). Labels take values from short fixed sets (or the registry's version numbers):
never a person, a key, a path a caller chose or a message, so no request can add a series.

The metrics are made on first use, in the worker: BentoML sets ``PROMETHEUS_MULTIPROC_DIR``
only once a worker starts, after this package is imported, and ``prometheus_client`` decides
at its import whether to write the shared files every worker's ``/metrics`` reads.
"""

from __future__ import annotations

import functools
import threading

__all__ = [
    "RECORDED_IN",
    "UNKNOWN_ROUTE",
    "count_crisis_answers",
    "count_front_answer",
    "count_store_failure",
    "forget_dead_workers",
    "serving_version",
]

# Where a crisis answer was recorded: the audit store, the service log (the store could not be
# written) or nowhere (a refused caller's request: nothing of it is kept).
RECORDED_IN = ("audit_log", "service_log", "nowhere")

# The route label of an answer to a path the service does not serve: the path itself is the
# caller's choice (a scanner's thousands of them would each be a series kept for good).
UNKNOWN_ROUTE = "unknown"


@functools.cache
def _metrics():
    import prometheus_client

    return {
        "crisis": prometheus_client.Counter(
            "recommender_crisis_answers",
            "Crisis answers given (resources, no ranking), by where they were recorded.",
            ["recorded_in"],
        ),
        "store": prometheus_client.Counter(
            "recommender_audit_store_failures",
            "Writes to the audit store that failed (their answers were not given, but crisis "
            "answers), by the error's type.",
            ["cause"],
        ),
        # 1 for a version a live worker serves; the largest of the workers' values is shown.
        "version": prometheus_client.Gauge(
            "recommender_model_version_served",
            "1 for each model version a live worker serves, 0 for one it served before.",
            ["version"],
            multiprocess_mode="livemax",
        ),
        "front": prometheus_client.Counter(
            "recommender_front_answers",
            "Answers given before BentoML's layers (which count the others in "
            "bentoml_service_request_total), by route (a served path, or 'unknown' for every "
            "path the service does not serve) and status.",
            ["route", "status"],
        ),
    }


def count_crisis_answers(n: int, recorded_in: str) -> None:
    """Count ``n`` crisis answers given, recorded where :data:`RECORDED_IN` says."""
    if n:
        _metrics()["crisis"].labels(recorded_in=recorded_in).inc(n)


def count_store_failure(error: BaseException) -> None:
    """Count one failed write to the audit store, labelled by ``error``'s type (a class name
    of the code or its libraries: a short fixed set)."""
    _metrics()["store"].labels(cause=type(error).__name__).inc()


def count_front_answer(route: str, status: int) -> None:
    """Count one answer given before BentoML's layers: ``route`` is a path the service serves
    or :data:`UNKNOWN_ROUTE`, never a path as a caller wrote it."""
    _metrics()["front"].labels(route=route, status=str(status)).inc()


def forget_dead_workers() -> list[int]:
    """Drop the live gauges of every worker process that is gone; returns their process ids.

    In multiprocess mode each worker writes its gauges to files named by its process id, and a
    "live" gauge (the version served, BentoML's requests in progress) is meant to leave the
    sum when its worker ends. A worker that ends normally removes its own (BentoML's client
    does, on exit); one killed (SIGKILL, the kernel's out-of-memory killer) cannot, and the
    server that starts its replacement does not either: its version would be shown for ever,
    and after a ``/reload`` beside the version the live workers serve. Counters and
    histograms are left as they are, so no count goes back.
    """
    import glob
    import os
    import re

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder or not os.path.isdir(folder):
        return []
    from prometheus_client import multiprocess

    from recommender._processes import process_alive

    pids = set()
    for path in glob.glob(os.path.join(glob.escape(folder), "gauge_live*_*.db")):
        found = re.fullmatch(r"gauge_live[a-z]*_(\d+)\.db", os.path.basename(path))
        if found:
            pids.add(int(found.group(1)))
    gone = sorted(pid for pid in pids if not process_alive(pid))
    for pid in gone:
        try:
            multiprocess.mark_process_dead(pid, folder)
        except FileNotFoundError:  # another worker's scrape removed it first
            pass
    return gone


_SERVED_LOCK = threading.Lock()
_served: list[str] = []  # the version this process serves (at most one)


def serving_version(version: str) -> None:
    """Say that this worker serves ``version`` from now on (and no longer the one before)."""
    gauge = _metrics()["version"]
    with _SERVED_LOCK:
        for previous in _served:
            if previous != version:
                gauge.labels(version=previous).set(0)
        _served[:] = [version]
        gauge.labels(version=version).set(1)
