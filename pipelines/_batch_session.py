"""The Spark side of batch scoring: a quiet local session bound to the loopback interface,
runtime settings set for one job and put back, actions that Ctrl-C cancels cleanly, and a plain
error when pyspark or Java is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import threading
import uuid
import warnings
from pathlib import Path

from recommender.errors import InputError

__all__ = ["spark_session", "spark_error_message", "LOCAL_JAVA_OPTIONS"]

# The JVM options of a new local session (``spark.driver.defaultJavaOptions``): the quick
# compiler only (see spark_session).
LOCAL_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def spark_session(master: str = "local[2]", *, shuffle_partitions: int | None = None):
    """The active SparkSession, or a new quiet one bound to the loopback interface.

    Parameters
    ----------
    master : str, default "local[2]"
        Used only when no session is active (an active one is reused as it is). A local
        master's JVM runs with :data:`LOCAL_JAVA_OPTIONS` (the quick compiler only).
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
        # A cancelled task's Python worker has nothing to finish (the JVM writes the output):
        # Spark's 2 s grace before killing it only delayed every Ctrl-C and the look-up after.
        .config("spark.python.task.killTimeout", "100ms")
    )
    if master.startswith("local"):
        # A local job is short-lived: the JIT's optimising tier (C2) compiles more than it ever
        # pays back. `recommender batch-score` on the demo model, CPU of the whole process tree
        # (medians of 3, alternating): 200 rows 30.5 -> 20.7 s, 200,000 rows 36.3 -> 25.5 s,
        # wall time no longer (docs/benchmarks.md, "Batch scoring"). Spark puts
        # defaultJavaOptions before spark.driver.extraJavaOptions: a user's own flags win.
        builder = builder.config("spark.driver.defaultJavaOptions", LOCAL_JAVA_OPTIONS)
    ctrl_c = signal.getsignal(signal.SIGINT)
    with _quiet_pandas_warning():
        session = builder.getOrCreate()
    if ctrl_c is not None and threading.current_thread() is threading.main_thread():
        # PySpark installs a Ctrl-C handler that calls the JVM from inside the very JVM call
        # it interrupts: its cancel fails and three tracebacks are printed. Python's handler
        # raises KeyboardInterrupt, and the job's own clean-up runs.
        signal.signal(signal.SIGINT, ctrl_c)
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


class _InterruptedCallLog(logging.Filter):
    def filter(self, record) -> bool:
        return record.getMessage() != "KeyboardInterrupt while sending command."


@contextlib.contextmanager
def _quiet_interrupted_call():
    # py4j logs a JVM call cut short by Ctrl-C or SIGTERM with a traceback, on the root logger;
    # the KeyboardInterrupt reaching the caller already says all there is to say.
    quiet = _InterruptedCallLog()
    logging.getLogger().addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(quiet)


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


def _cancellable(spark, work):
    """``work()`` (Spark actions) in a job group of its own, cancelled on Ctrl-C or SIGTERM.

    The actions run in another thread, so the signal reaches this one outside any JVM call:
    taken inside one, it cuts py4j's link and the job can no longer be cancelled, so its tasks
    and the JVM's exit re-create a write's staging folder after the caller removed it. Here the
    job group is cancelled, and this returns (raising the interrupt) only once the actions have
    ended and no task of the group is still running, so nothing writes after the caller's
    clean-up.
    """
    from pyspark import InheritableThread

    context = spark.sparkContext
    group = f"burnout-recommender-{uuid.uuid4().hex[:12]}"
    outcome: dict = {}
    ended = threading.Event()

    def run():
        try:
            context.setJobGroup(group, "batch-score", interruptOnCancel=True)
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = error
        finally:
            ended.set()

    InheritableThread(target=run, daemon=True).start()
    try:
        ended.wait()
    except BaseException:
        # Not Thread.is_alive: after a join cut short by a signal it may already say False.
        while not ended.is_set():  # again and again: a job may start after the first cancel
            context.cancelJobGroup(group)
            ended.wait(0.2)
        _wait_for_tasks(context, group)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _wait_for_tasks(context, group: str) -> None:
    """Return once no task of the group's jobs is still running (a cancelled task ends when it
    next checks for it; its writer may create folders until then).

    The status tracker is fed by Spark's listener bus, which runs behind the scheduler (by
    seconds on a loaded machine): right after a cancel it may not know the group's job yet, or
    show a stage with no running task before its tasks' starts reached it, and looking then
    let a killed task re-create a write's staging folder after the caller removed it. So a
    marker job runs first: the scheduler posts it after every event of the cancelled jobs, and
    once the tracker shows it ended, it has seen their jobs and tasks start; then this waits
    until each of those jobs has ended and none of their stages has a running task.
    """
    import time

    tracker = context.statusTracker()
    marker = _settled_marker(context, group)
    while marker and not _ended(tracker, tracker.getJobIdsForGroup(marker)):
        time.sleep(0.05)
    while True:
        jobs = [tracker.getJobInfo(job) for job in tracker.getJobIdsForGroup(group)]
        running = any(job and job.status == "RUNNING" for job in jobs)
        stages = [tracker.getStageInfo(stage) for job in jobs if job for stage in job.stageIds]
        if not running and not any(stage and stage.numActiveTasks for stage in stages):
            return
        time.sleep(0.1)


def _settled_marker(context, group: str) -> str | None:
    """Run a one-task job in a group of its own (in another thread, leaving this thread's
    group as it is) and return that group; None when the job could not run (a session being
    stopped), which leaves nothing to wait for."""
    from pyspark import InheritableThread

    marker = f"{group}-settled"
    ran = []

    def run():
        context.setJobGroup(marker, "batch-score: after a cancel", interruptOnCancel=False)
        with contextlib.suppress(Exception):
            context.parallelize([0], 1).count()
            ran.append(True)

    thread = InheritableThread(target=run, daemon=True)
    thread.start()
    thread.join()
    return marker if ran else None


def _ended(tracker, jobs) -> bool:
    infos = [tracker.getJobInfo(job) for job in jobs]
    return bool(infos) and all(info is not None and info.status != "RUNNING" for info in infos)


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
    if java_home:
        # Spark starts $JAVA_HOME/bin/java when JAVA_HOME is set; a `java` on PATH is not tried.
        if not (Path(java_home) / "bin" / "java").exists():
            raise InputError(
                f"{_SPARK_MISSING}: JAVA_HOME={java_home} has no bin/java; set JAVA_HOME to a "
                "Java 17+ installation, or unset it to use the `java` on PATH"
            )
    elif shutil.which("java") is None:
        raise InputError(f"{_SPARK_MISSING}: no `java` on PATH and no JAVA_HOME")


# Java's exception classes: their lines are the JVM's account, the others Python's.
_JAVA_PACKAGES = ("org.", "java.", "javax.", "scala.", "com.", "io.")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.$]*(Error|Exception)\b")


def spark_error_message(error) -> str:
    """The one line of a Spark failure that a user can act on.

    A failed Spark call carries the worker's Python traceback and the JVM's stack (a hundred
    lines and more). A Python worker's error is the last Python exception line; otherwise it
    is the JVM's first exception message (which names the file and column of a read error).
    """
    lines = [line.strip() for line in str(error).splitlines()]
    # py4j puts the Java exception after ": " on the line below its own "error occurred" line.
    lines = [line[1:].strip() if line.startswith(":") else line for line in lines]
    found = [line for line in lines if _EXCEPTION_LINE.match(line)]
    python = [line for line in found if not line.startswith(_JAVA_PACKAGES)]
    if python:
        return python[-1]
    if found:
        message = found[0].split(": ", 1)[-1]
        return re.sub(r"\s*SQLSTATE: \w+$", "", message)
    return lines[0] if lines else "unknown error"
