"""The people flagged for crisis risk in a cohort read by Spark: found (a flag that cannot be
read counts as set), refused when a flag is not a boolean (naming its file row), and given their
resources beside the output when the run fails or is stopped (:mod:`pipelines._crisis_rows`).
"""

from __future__ import annotations

import contextlib
import uuid

import numpy as np
import pandas as pd

from pipelines._batch_cohort import read_cohort_spark
from pipelines._batch_session import (
    _cancellable,
    _quiet_interrupted_call,
    _quiet_pandas_warning,
    _require_spark,
    spark_error_message,
    spark_session,
)
from pipelines._crisis_rows import crisis_rows_left, with_crisis_rows
from recommender.errors import InputError
from recommender.policy import CRISIS_COLUMN

__all__ = [
    "check_crisis_column",
    "crisis_rows_when_stopped",
    "flagged_rows",
    "flagged_rows_on_spark",
    "interrupt_behind",
    "refused_with_crisis_rows",
]

_NOTHING = "nothing was scored"


def refused_with_crisis_rows(error, cohort, rules, out_path):
    """``error`` saying that nothing was scored, once the flagged rows of ``cohort`` have
    their resources beside ``out_path`` (:func:`pipelines._crisis_rows.with_crisis_rows`)."""
    listed = flagged_rows(cohort)
    return with_crisis_rows(
        error, listed, np.ones(len(listed), dtype=bool), rules, out_path, nothing=_NOTHING
    )


@contextlib.contextmanager
def crisis_rows_when_stopped(spark, cohort, rules, out_path):
    """Run the block that scores ``cohort``; stopped by Ctrl-C or ``kill``, cancel its Spark
    jobs, write the crisis-flagged rows' resources beside ``out_path`` as a failure does, and
    let the interrupt say where (:func:`pipelines._crisis_rows.crisis_rows_left`): stopping
    the work is no reason to withhold them. Finding those rows is one more pass over the file,
    which Ctrl-C again stops; the interrupt then says that they did not get them.

    Yields ``published``, which the block calls once the scored table is in place: stopped
    after that, nothing more is written (the table holds their answers; a crisis file would
    say that nothing was scored) and the interrupt says where the table is."""
    context = spark.sparkContext
    # A tag rather than a job group: it adds to a caller's group instead of replacing it.
    tag = f"burnout-recommender-{uuid.uuid4().hex[:12]}"
    context.addJobTag(tag)
    done = []
    try:
        try:
            yield lambda: done.append(True)
        except Exception as error:
            # Stopped inside a JVM call of this thread, py4j drops its connection and PySpark's
            # clean-up then calls the JVM on a new one, which may fail: that failure, not the
            # interrupt, would reach the caller (exit 1, "the Spark job failed"), and the
            # flagged rows would get nothing.
            interrupt = interrupt_behind(error)
            if interrupt is None:
                raise
            raise interrupt from None
    except KeyboardInterrupt as interrupt:
        if done:
            interrupt.left = f"the scored table was written to {out_path} whole"
            raise
        # A job the signal left running (validation's, the model's broadcast) would keep the
        # cores busy before the look-up below; the write's own job is already cancelled.
        _after_interrupt(lambda: context.cancelJobsWithTag(tag))
        try:
            listed = _cancellable(spark, lambda: flagged_rows(cohort))
        except KeyboardInterrupt as again:
            again.left = (
                "no table was left half-written (an earlier one stays); stopped again while "
                "looking up the rows flagged for crisis risk, so they were not written: run it "
                "again, or give the file to `recommender score`"
            )
            raise again from None
        crisis_rows_left(
            interrupt,
            listed,
            np.ones(len(listed), dtype=bool),
            rules,
            out_path,
            nothing=_NOTHING,
            unfinished="no table was left half-written (an earlier one stays)",
        )
        raise
    finally:
        _after_interrupt(lambda: context.removeJobTag(tag))


def interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or ``kill`` during whose handling PySpark or py4j raised ``error``, if any."""
    seen = error
    while seen is not None and type(seen).__module__.startswith(("pyspark", "py4j")):
        seen = seen.__context__
        if isinstance(seen, KeyboardInterrupt):
            return seen
    return None


def _after_interrupt(call, attempts: int = 5):
    """``call()``, a quick JVM call of this thread, tried again while py4j's new connection
    fails: an interrupt inside a JVM call drops this thread's connection, and the JVM may
    still be closing it as the next one opens ("Answer from Java side is empty")."""
    import time

    from py4j.protocol import Py4JNetworkError

    for attempt in range(attempts):
        try:
            return call()
        except Py4JNetworkError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def flagged_rows_on_spark(data_path, *, master: str = "local[2]") -> pd.DataFrame:
    """The rows of ``data_path`` (read as :func:`score_with_spark` reads it) flagged for crisis
    risk or whose flag cannot be read, with ``person_id`` and ``role``: what their crisis
    answers need when the run is refused before it reads the file."""
    _require_spark()
    spark = spark_session(master)
    with _quiet_interrupted_call(), _quiet_pandas_warning():
        try:
            return flagged_rows(read_cohort_spark(spark, data_path))
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - Spark's own failures, said in one line
            raise InputError(f"{data_path}: cannot be read: {spark_error_message(error)}") from None


def flagged_rows(cohort) -> pd.DataFrame:
    """The rows flagged for crisis risk, with what a crisis answer reads (``person_id``,
    ``role``), as text; none without the column. A flag that cannot be read counts as one (the
    file's check refuses it, naming its row; its person gets the resources all the same), and
    so does one in a column that names the flag otherwise (``Crisis Risk``), which the file's
    check refuses by its name."""
    from pyspark.sql import functions as F

    from recommender.cohort import is_crisis_name

    names = cohort.columns
    flags = [i for i, name in enumerate(names) if is_crisis_name(name)]
    if not flags:
        return pd.DataFrame(columns=["person_id", "role"])
    kept: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in ("person_id", "role"):
            kept.setdefault(name, i)
    columns = list(kept)
    # Columns by position (a header may give one twice, which Spark cannot resolve by name),
    # each flag column as ``crisis_risk_<i>``.
    positional = cohort.toDF(*[f"_{i}" for i in range(len(names))])
    named = [F.col(f"_{i}").cast("string").alias(name) for name, i in kept.items()] + [
        F.col(f"_{i}").cast("string").alias(f"{CRISIS_COLUMN}_{k}") for k, i in enumerate(flags)
    ]
    text = positional.select(*named)
    listed = text.mapInPandas(_only_flagged, text.schema).toPandas().reset_index(drop=True)
    return listed[columns]


def _only_flagged(batches):
    """mapInPandas body: the rows whose crisis flag, in any of its ``crisis_risk_<i>`` columns,
    reads as set or cannot be read.

    ``crisis_flags`` one value at a time, strictly: a worker may run the loaded model's saved
    copy of ``recommender``, which an older model saved before ``strict=False`` existed."""
    from recommender.errors import InputError
    from recommender.policy import crisis_flags

    for batch in batches:
        flags = [c for c in batch.columns if c.startswith(f"{CRISIS_COLUMN}_")]
        keep = []
        for values in zip(*(batch[c].tolist() for c in flags)):
            set_ = False
            for value in values:
                try:
                    set_ = set_ or bool(crisis_flags(pd.DataFrame({CRISIS_COLUMN: [value]}))[0])
                except InputError:
                    set_ = True
            keep.append(set_)
        yield batch.loc[keep]


def check_crisis_column(cohort, offsets, data_path) -> None:
    """Refuse a ``crisis_risk`` column with values that are not booleans, naming file rows."""
    from recommender.policy import crisis_flags

    bad = (
        cohort.select(CRISIS_COLUMN)
        .mapInPandas(_bad_flags, "partition int, row long, value string")
        .toPandas()
    )
    if bad.empty:
        return
    bad["row"] = bad["partition"].map(offsets) + bad["row"]
    bad = bad.sort_values("row", kind="stable").reset_index(drop=True)
    table = pd.DataFrame({CRISIS_COLUMN: [None] * (int(bad["row"].max()) + 1)}, dtype=object)
    table.loc[bad["row"].to_numpy(), CRISIS_COLUMN] = bad["value"].to_numpy()
    crisis_flags(table, where=str(data_path))  # raises, naming each row, its value, what works


def _bad_flags(batches):
    """mapInPandas body: (partition, local row, value) of crisis flags that are not booleans."""
    from pyspark import TaskContext

    from recommender.errors import InputError
    from recommender.policy import crisis_flags

    partition = TaskContext.get().partitionId()
    position = 0
    for batch in batches:
        try:
            crisis_flags(batch)
        except InputError as error:
            rows = [p["row"] for p in error.problems]
            yield pd.DataFrame(
                {
                    "partition": partition,
                    "row": np.asarray(rows) + position,
                    "value": [str(p["value"]) for p in error.problems],
                }
            )
        position += len(batch)
