"""The service's own Prometheus metrics, beside BentoML's per-route request counts.

What an operator watches that BentoML cannot count: crisis answers (and where each was
recorded), audit-store write failures, and which model version each worker serves. Labels
take values from short fixed sets (or the registry's version numbers): never a person, a key,
a path or a message, so no request can add a series.

The metrics are made on first use, in the worker: BentoML sets ``PROMETHEUS_MULTIPROC_DIR``
only once a worker starts, after this package is imported, and ``prometheus_client`` decides
at its import whether to write the shared files every worker's ``/metrics`` reads.
"""

from __future__ import annotations

import functools
import threading

__all__ = ["RECORDED_IN", "count_crisis_answers", "count_store_failure", "serving_version"]

# Where a crisis answer was recorded: the audit store, the service log (the store could not be
# written) or nowhere (a refused caller's request: nothing of it is kept).
RECORDED_IN = ("audit_log", "service_log", "nowhere")


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
    }


def count_crisis_answers(n: int, recorded_in: str) -> None:
    """Count ``n`` crisis answers given, recorded where :data:`RECORDED_IN` says."""
    if n:
        _metrics()["crisis"].labels(recorded_in=recorded_in).inc(n)


def count_store_failure(error: BaseException) -> None:
    """Count one failed write to the audit store, labelled by ``error``'s type (a class name
    of the code or its libraries: a short fixed set)."""
    _metrics()["store"].labels(cause=type(error).__name__).inc()


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
