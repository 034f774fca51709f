"""One local Spark session per test process, shared by every module that scores on Spark.

Starting Spark's JVM is the slow part of those modules (tests/test_batch_*.py and the others
that run ``recommender batch-score`` in process); each started and stopped its own. Import the
fixture as service_fixtures' are imported::

    from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session

The session is started here, in the main thread and through the product's own
:func:`pipelines.batch.spark_session`, the first time a test asks for it (an in-process
``batch-score`` reuses it, as it reuses any active session), and stopped when the test
session ends. Its users leave it as they found it: a runtime setting changed is put back
(``spark.conf``), job groups and tags are per thread and set by the code under test, nothing
stops it. Started here, its JVM and Python workers see a home of their own
(``RECOMMENDER_HOME``), none of a module's: the driver reads each test's home, and the workers
are handed what they need with each task, so no test depends on which module came first.

Under ``pytest -n 2`` one worker runs every Spark test, first (tests/spark_first.py). The session
is still stopped only at the end, not after the last Spark test: ``stop()`` leaves the JVM
running with its memory (PySpark ends the gateway only when Python exits), an idle JVM costs
about 0.2-0.3 CPU-seconds a minute, and Spark ends its idle Python workers itself after a minute.
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest

# Session-wide state shared by every module that imports the fixture (pytest makes one fixture
# definition per importing module, so the cache, not the scope, keeps it to one).
_SESSION: dict = {}


def need_java() -> None:
    """Skip where a missing Java is expected; on CI (CI=true) it must be there, so fail."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "Spark needs a Java runtime (no `java` on PATH and no JAVA_HOME)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must install it)")
        pytest.skip(reason)


def how_started() -> tuple[bool, object, object]:
    """``(fresh, before, after)`` of the shared session's start: whether this module started
    it (no session was active in the process), and Python's SIGINT handler before and after."""
    return _SESSION["started"]


@pytest.fixture(scope="session")
def spark(tmp_path_factory, request):
    """The process's local[2] SparkSession, started on first use and stopped at the end."""
    if "session" not in _SESSION:
        need_java()
        from pipelines.batch import spark_session
        from pyspark.sql import SparkSession

        fresh = SparkSession.getActiveSession() is None
        before = signal.getsignal(signal.SIGINT)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RECOMMENDER_HOME", str(tmp_path_factory.mktemp("spark-home")))
            session = spark_session("local[2]")
        _SESSION["started"] = (fresh, before, signal.getsignal(signal.SIGINT))
        _SESSION["session"] = session
        request.addfinalizer(_stop)
    return _SESSION["session"]


def _stop() -> None:
    _SESSION.pop("session").stop()
    _SESSION.pop("started", None)
