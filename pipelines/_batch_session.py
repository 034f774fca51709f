"""The Spark side of batch scoring: a quiet local session bound to the loopback interface,
runtime settings set for one job and put back, and a plain error when pyspark or Java is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from pathlib import Path

from recommender.errors import InputError

__all__ = ["spark_session"]


def spark_session(master: str = "local[2]", *, shuffle_partitions: int | None = None):
    """The active SparkSession, or a new quiet one bound to the loopback interface.

    Parameters
    ----------
    master : str, default "local[2]"
        Used only when no session is active (an active one is reused as it is).
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions`` of a new session; default: the cores of a
        ``local[n]`` master (Spark's 200 is meant for clusters and makes small jobs slow).

    Returns
    -------
    pyspark.sql.SparkSession
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if master.startswith("local"):
        # The Python workers must import this project and its model from this very
        # environment, and nothing should listen beyond the loopback interface.
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    cores = _local_cores(master)
    builder = (
        SparkSession.builder.master(master)
        .appName("burnout-recommender-batch")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or cores or 4))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    with _quiet_pandas_warning():
        session = builder.getOrCreate()
    # A failed job reaches the caller as an exception carrying the worker's traceback; the
    # JVM's own ERROR lines about it (and the tasks aborted after it) would only bury that.
    session.sparkContext.setLogLevel("FATAL")
    return session


def _local_cores(master: str) -> int | None:
    if master == "local":
        return 1
    if master.startswith("local[") and master.endswith("]"):
        inside = master[6:-1].split(",")[0]
        return os.cpu_count() or 1 if inside == "*" else int(inside) if inside.isdigit() else None
    return None


@contextlib.contextmanager
def _quiet_pandas_warning():
    # PySpark 4.3 warns on every pandas conversion that it has not certified pandas 3, and
    # pandas warns about a keyword PySpark still passes; tests/test_batch_spark.py (Spark equals
    # in-process scoring) is what certifies the path used here.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        warnings.filterwarnings(
            "ignore", message="The copy keyword is deprecated", module=r"pyspark\."
        )
        yield


@contextlib.contextmanager
def _session_conf(spark, settings: dict):
    """Set runtime SQL settings for the block and put the caller's values back afterwards."""
    saved = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


_SPARK_MISSING = (
    "Spark batch scoring needs the spark extra (pip install 'burnout-recommender[spark]', "
    "or `make venv-test`) and Java 17+"
)


def _require_spark() -> None:
    """Raise InputError, not a traceback, when pyspark or a Java runtime is missing."""
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise InputError(f"{_SPARK_MISSING}: pyspark is not installed ({error})") from error
    if SparkSession.getActiveSession() is not None:
        return  # a running session already has its JVM
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (
        java_home and (Path(java_home) / "bin" / "java").exists()
    ):
        raise InputError(f"{_SPARK_MISSING}: no `java` on PATH and no JAVA_HOME with bin/java")
