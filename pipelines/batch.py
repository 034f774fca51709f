"""Batch scoring on Spark: a cohort too large for one process in, the scored table out.

The model is the one registered pyfunc artifact, run by ``mlflow.pyfunc.spark_udf`` (see
:mod:`recommender.registry._spark`), so every row gets exactly what ``recommender score`` and
the service would give it. The steps:

1. **Read** the cohort with Spark: Parquet as stored (the normal case for large cohorts), CSV
   with every column as text, as :func:`recommender.cohort.read_cohort` reads it.
2. **Validate at the edge** with :func:`recommender.cohort.validate_cohort` itself, run on each
   partition's Arrow batches through ``mapInPandas``, so the rules, the accepted values and the
   wording are the project's own. Each partition reports its row count and its findings with
   partition-local row numbers; the driver turns them into file row numbers by offsetting with
   the counts of the partitions before it. The one rule that spans partitions, a ``person_id``
   used twice, is checked by a Spark aggregation over the whole table. An invalid cohort raises
   :class:`~recommender.errors.InputError` naming row, column, value and what is accepted, and
   nothing is written.
3. **Score** every row with the UDF; when the input has fewer partitions than Spark has cores
   (a Parquet file with one row group is one partition), rows are numbered and spread by range
   so that every core works and the output keeps the input's order.
4. **Write** Parquet into a hidden folder next to the destination, check the row count, and
   only then rename it into place: a failure at any step leaves no half-written table.

Row numbers and row order follow Spark's read order. For one file, the normal case, that is
the file's own order (its splits are read in sequence), so ``row 2100`` is the file's row 2100
and the scored table lists people in the input's order. For a folder of part files Spark
schedules the larger parts first; numbers then count in that order, and every problem also
names its ``person_id``. Replacing an existing destination is two renames, so for an instant
between them the path does not exist; readers never see a partial table. Only an earlier
scored table (Spark's part files and markers) is replaced unless ``overwrite`` is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import pickle
import shutil
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.errors import InputError

__all__ = [
    "BatchSummary",
    "spark_session",
    "read_cohort_spark",
    "validate_cohort_spark",
    "score_with_spark",
]

# Findings kept per check and partition; the rest are counted, so a file that is wrong in
# every row cannot fill the driver's memory with problem objects.
_MAX_LISTED_PER_PARTITION = 1000
# Distinct duplicated person_ids located to their rows; more are counted, not listed.
_MAX_DUPLICATE_IDS = 1000
_ROW = "_batch_row"


@dataclass
class BatchSummary:
    """What :func:`score_with_spark` wrote.

    Attributes
    ----------
    path : Path
        The Parquet folder of the scored table.
    rows : int
        Rows scored (equal to the cohort's rows).
    model_uri, version : str, str or None
        The model that scored them.
    arm_counts : dict
        Rows per recommended arm, every arm of the model listed (0 when never recommended).
    partitions : int
        Spark partitions the scoring ran on.
    columns : list of str
        Columns of the scored table.
    """

    path: Path
    rows: int
    model_uri: str
    version: str | None
    arm_counts: dict = field(default_factory=dict)
    partitions: int = 0
    columns: list = field(default_factory=list)

    @property
    def recommendation_mix(self) -> dict:
        """Share of rows per recommended arm."""
        return {arm: (n / self.rows if self.rows else 0.0) for arm, n in self.arm_counts.items()}


# ---------------------------------------------------------------------------------- session
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


# ---------------------------------------------------------------------------------- reading
def read_cohort_spark(spark, path):
    """Read a cohort file or Parquet folder as a Spark DataFrame, without coercing types.

    Parameters
    ----------
    spark : SparkSession
    path : str or Path
        ``.parquet`` (a file or a folder of part files), ``.csv``, ``.csv.gz`` or ``.tsv``.

    Returns
    -------
    pyspark.sql.DataFrame
        CSV columns as strings (empty cells missing), Parquet columns as stored.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        if name.endswith(".parquet") or (path.is_dir() and any(path.glob("*.parquet"))):
            return spark.read.parquet(str(path))
        if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            sep = "\t" if ".tsv" in name else ","
            # No type inference: validation must see the text as written, like read_cohort.
            return spark.read.csv(str(path), header=True, sep=sep, inferSchema=False)
    except Exception as error:  # noqa: BLE001 - Spark's AnalysisException and friends
        raise InputError(f"{path}: cannot be read: {error}") from None
    raise InputError(
        f"{path}: unknown file type; accepted are .parquet (file or folder), "
        ".csv, .csv.gz and .tsv"
    )


# ---------------------------------------------------------------------------------- validation
def _validate_partition(batches, *, extra_features):
    """mapInPandas body: one summary row per partition with its count and pickled findings."""
    from pyspark import TaskContext

    from recommender.cohort import validate_cohort

    partition = TaskContext.get().partitionId()
    position = 0
    checks: dict[tuple, object] = {}
    unlisted = 0
    for batch in batches:
        if len(batch):
            for check in validate_cohort(batch, extra_features=extra_features).checks:
                # Column-level findings are made once on the driver, duplicates over the whole
                # table; only cell findings belong to a partition.
                if check.rows is None or check.rule == "duplicate_id":
                    continue
                key = (check.rule, check.column)
                shifted = dataclasses.replace(check, rows=check.rows + position)
                checks[key] = shifted if key not in checks else _concat(checks[key], shifted)
        position += len(batch)
    listed = []
    for check in checks.values():
        unlisted += max(0, check.count - _MAX_LISTED_PER_PARTITION)
        listed.append(_head(check, _MAX_LISTED_PER_PARTITION))
    # Pickled so the driver rebuilds the very report objects validate_cohort made (same rules,
    # same wording); the bytes come only from this function running in our own executors.
    yield pd.DataFrame(
        {
            "partition": [partition],
            "rows": [position],
            "unlisted": [unlisted],
            "checks": [pickle.dumps(listed)],
        }
    )


def _locate_ids(batches, *, wanted):
    """mapInPandas body: (partition, local row, id) of the rows whose id is in ``wanted``."""
    from pyspark import TaskContext

    partition = TaskContext.get().partitionId()
    position = 0
    for batch in batches:
        ids = batch["person_id"].astype("string")
        hits = np.flatnonzero(ids.isin(wanted).fillna(False).to_numpy(dtype=bool))
        if len(hits):
            yield pd.DataFrame(
                {
                    "partition": partition,
                    "row": hits + position,
                    "person_id": ids.iloc[hits].astype(str).to_numpy(),
                }
            )
        position += len(batch)


def _number_rows(batches, *, offsets):
    """mapInPandas body: add the file row number (partition offset + position)."""
    from pyspark import TaskContext

    position = offsets[TaskContext.get().partitionId()]
    for batch in batches:
        batch[_ROW] = np.arange(position, position + len(batch), dtype=np.int64)
        position += len(batch)
        yield batch


def _concat(first, second):
    def join(a, b):
        return None if a is None else np.concatenate([a, b])

    return dataclasses.replace(
        first,
        rows=join(first.rows, second.rows),
        values=join(first.values, second.values),
        person_ids=join(first.person_ids, second.person_ids),
        details=join(first.details, second.details),
    )


def _head(check, n):
    if check.count <= n:
        return check

    def cut(a):
        return None if a is None else a[:n]

    return dataclasses.replace(
        check,
        rows=cut(check.rows),
        values=cut(check.values),
        person_ids=cut(check.person_ids),
        details=cut(check.details),
    )


def validate_cohort_spark(frame, *, extra_features=()):
    """Validate a Spark DataFrame against the data contract with the project's own rules.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        As read by :func:`read_cohort_spark` (its partitioning must not change between this
        call and scoring: row numbers are partition offsets).
    extra_features : iterable of str
        Profile columns outside the contract that the model uses.

    Returns
    -------
    report : recommender.cohort.ValidationReport
        Rows are 0-based positions in the table (a CSV line is row + 2), as everywhere else.
    offsets : dict
        ``partition -> number of rows before it``.
    unlisted : int
        Problem rows counted but not listed (beyond 1,000 per check and partition).
    """
    from recommender.cohort import ValidationReport, validate_cohort

    extra_features = tuple(extra_features)
    columns = list(frame.columns)
    # Column-level rules (missing, duplicated, unknown columns) on the header alone.
    header = validate_cohort(pd.DataFrame(columns=columns), extra_features=extra_features)
    column_checks = [c for c in header.checks if c.rule != "empty_table"]
    if any(c.severity == "error" for c in column_checks):
        return (ValidationReport(n_rows=0, n_columns=len(columns), checks=column_checks), {}, 0)

    summary = frame.mapInPandas(
        lambda batches: _validate_partition(batches, extra_features=extra_features),
        "partition int, rows long, unlisted long, checks binary",
    ).collect()
    counts = {r["partition"]: r["rows"] for r in summary}
    offsets, total = {}, 0
    for partition in sorted(counts):
        offsets[partition] = total
        total += counts[partition]
    merged: dict[tuple, object] = {}
    for record in summary:
        for check in pickle.loads(record["checks"]):
            shifted = dataclasses.replace(check, rows=check.rows + offsets[record["partition"]])
            key = (check.rule, check.column)
            merged[key] = shifted if key not in merged else _concat(merged[key], shifted)
    unlisted = sum(r["unlisted"] for r in summary)
    checks = column_checks + [_sorted(c) for c in merged.values()]

    if "person_id" in columns and total:
        duplicate = _duplicate_check(frame, offsets, extra_features)
        if duplicate is not None:
            checks.append(duplicate)
    if total == 0:
        checks += [c for c in header.checks if c.rule == "empty_table"]
    report = ValidationReport(n_rows=total, n_columns=len(columns), checks=checks)
    return report, offsets, unlisted


def _sorted(check):
    order = np.argsort(check.rows, kind="stable")
    return dataclasses.replace(
        check,
        rows=check.rows[order],
        values=check.values[order],
        person_ids=None if check.person_ids is None else check.person_ids[order],
        details=None if check.details is None else check.details[order],
    )


def _duplicate_check(frame, offsets, extra_features):
    """The ``duplicate_id`` finding over the whole table, in the project's wording."""
    from pyspark.sql import functions as F

    from recommender.cohort import validate_cohort

    ids = frame.select(F.col("person_id").cast("string").alias("person_id"))
    present = ids.where(F.col("person_id").isNotNull() & (F.trim("person_id") != ""))
    repeated = [
        r["person_id"]
        for r in present.groupBy("person_id")
        .count()
        .where(F.col("count") > 1)
        .limit(_MAX_DUPLICATE_IDS)
        .collect()
    ]
    if not repeated:
        return None
    located = (
        frame.select("person_id")
        .mapInPandas(
            lambda batches: _locate_ids(batches, wanted=set(repeated)),
            "partition int, row long, person_id string",
        )
        .toPandas()
    )
    located["row"] = located["partition"].map(offsets) + located["row"]
    located = located.sort_values("row", kind="stable").reset_index(drop=True)
    # The rule itself (which copy is "later") is validate_cohort's, run on the repeated rows
    # in table order; only its row numbers are translated back to the table's.
    local = validate_cohort(located[["person_id"]], extra_features=extra_features)
    check = next(c for c in local.checks if c.rule == "duplicate_id")
    table_rows = located["row"].to_numpy()
    first_row = located.groupby("person_id")["row"].transform("min").to_numpy()
    details = np.array(
        [f"same person_id as row {int(first_row[r])}" for r in check.rows], dtype=object
    )
    return dataclasses.replace(check, rows=table_rows[check.rows], details=details)


# ---------------------------------------------------------------------------------- scoring
def score_with_spark(
    model_uri: str,
    data_path,
    out_path,
    *,
    master: str = "local[2]",
    partitions: int | None = None,
    alpha: float = 0.1,
    contributions: bool = False,
    batch_rows: int = 50_000,
    overwrite: bool = False,
) -> BatchSummary:
    """Validate a cohort, score every row with the registered model on Spark, write Parquet.

    Parameters
    ----------
    model_uri : str
        ``models:/burnout-recommender@champion``, a version, an alias, ``runs:/<id>/model`` or a
        model folder (see :func:`recommender.registry.resolve_model`).
    data_path : str or Path
        Cohort as Parquet (file or folder) or CSV, with the profile columns of the contract.
    out_path : str or Path
        Destination Parquet folder (``.parquet`` or no suffix). An existing one is replaced
        only if it is an earlier Spark output (nothing but ``part-*.parquet``, ``_SUCCESS``,
        ``*.crc`` and hidden files) or ``overwrite`` is true; anything else is refused.
    master : str, default "local[2]"
        Spark master of a new session; an active session is reused.
    partitions : int, optional
        Partitions to score on; default: the input's, raised to Spark's default parallelism.
    alpha : float, default 0.1
        Intervals are two-sided ``1 - alpha``.
    contributions : bool, default False
        Add ``contrib_<feature>`` columns explaining the recommended arm.
    batch_rows : int, default 50,000
        Rows per Arrow batch handed to validation and to the model (Spark's default, 10,000,
        pays the model's fixed cost per call five times as often); restored afterwards.
    overwrite : bool, default False
        Replace whatever is at ``out_path``, even a folder that is not an earlier Spark output.

    Returns
    -------
    BatchSummary

    Raises
    ------
    InputError
        The cohort breaks the data contract (every problem listed with row, column, value and
        what is accepted), the model is unknown, an argument is out of range, ``out_path``
        holds something other than an earlier Spark output (without ``overwrite``), or pyspark
        or Java is not installed. Nothing is written.

    Examples
    --------
    >>> summary = score_with_spark("models:/burnout-recommender@champion",
    ...                            "cohort.parquet", "scored.parquet")  # doctest: +SKIP
    >>> summary.rows, summary.arm_counts  # doctest: +SKIP
    (200000, {'none': 61234, 'coaching': 90112, ...})
    """
    out_path = Path(out_path)
    if out_path.suffix and out_path.suffix.lower() != ".parquet":
        raise InputError(
            f"--out {out_path}: Spark batch scoring writes a Parquet folder; name "
            "it *.parquet (or without a suffix)"
        )
    _check_destination(out_path, data_path, overwrite=overwrite)
    _require_spark()

    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StructField, StructType

    from recommender.registry import spark_scorer

    if partitions is not None and (isinstance(partitions, bool) or int(partitions) < 1):
        raise InputError(f"partitions must be a whole number >= 1, got {partitions!r}")

    if isinstance(batch_rows, bool) or int(batch_rows) < 1:
        raise InputError(f"batch_rows must be a whole number >= 1, got {batch_rows!r}")

    spark = spark_session(master)
    with (
        _quiet_pandas_warning(),
        _session_conf(
            spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": str(int(batch_rows))}
        ),
    ):
        scorer = spark_scorer(spark, model_uri, alpha=alpha, contributions=contributions)
        cohort = read_cohort_spark(spark, data_path)

        report, offsets, unlisted = validate_cohort_spark(
            cohort, extra_features=scorer.extra_features
        )
        if not report.ok:
            more = (
                f"\n  ({unlisted:,} further problem rows were counted but not listed)"
                if unlisted
                else ""
            )
            raise InputError(
                f"{data_path} does not meet the data contract:\n" f"{report.format()}{more}",
                problems=report.errors,
            )
        rows = report.n_rows

        typed = cohort.select(
            *[_cast(F.col(c), scorer.input_types[c]).alias(c) for c in scorer.input_columns]
        )
        current = typed.rdd.getNumPartitions()
        wanted = partitions or max(current, spark.sparkContext.defaultParallelism)
        if wanted != current:
            # Range partitioning on the file row number keeps the input's order in the output.
            numbered = typed.mapInPandas(
                lambda batches: _number_rows(batches, offsets=offsets),
                StructType([*typed.schema.fields, StructField(_ROW, LongType(), False)]),
            )
            typed = (
                numbered.repartitionByRange(int(wanted), _ROW).sortWithinPartitions(_ROW).drop(_ROW)
            )
        scored = typed.select(scorer.udf(F.struct(*scorer.input_columns)).alias("scored"))
        scored = scored.select("scored.*")

        staging = out_path.parent / f".{out_path.name}.writing-{uuid.uuid4().hex[:12]}"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            scored.write.mode("errorifexists").parquet(str(staging))
            written = spark.read.parquet(str(staging))
            mix = {
                r["recommended"]: int(r["count"])
                for r in written.groupBy("recommended").count().collect()
            }
            if sum(mix.values()) != rows:
                raise RuntimeError(
                    f"scored {sum(mix.values()):,} rows but the cohort has "
                    f"{rows:,}; nothing was written to {out_path}"
                )
            _publish(staging, out_path, overwrite=overwrite)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    arms = list(scorer.arms) or sorted(mix)
    arm_counts = {arm: mix.get(arm, 0) for arm in arms}
    arm_counts.update({arm: n for arm, n in mix.items() if arm not in arm_counts})
    return BatchSummary(
        path=out_path,
        rows=rows,
        model_uri=scorer.model_uri,
        version=scorer.version,
        arm_counts=arm_counts,
        partitions=int(wanted),
        columns=list(scorer.output_columns),
    )


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


def _cast(column, spark_type: str):
    if spark_type in ("bigint", "int", "smallint", "tinyint"):
        # Through double: validation accepts "42.0" as a whole number; ANSI casts of that text
        # straight to an integer refuse it.
        return column.cast("double").cast(spark_type)
    return column.cast(spark_type)


def _publish(staging: Path, out_path: Path, *, overwrite: bool = False) -> None:
    """Move the finished folder into place; an existing table is replaced only afterwards."""
    if not out_path.exists() and not out_path.is_symlink():
        os.rename(staging, out_path)
        return
    # Checked again: something may have been put there while the job ran.
    _check_destination(out_path, None, overwrite=overwrite)
    retired = out_path.parent / f".{out_path.name}.replaced-{uuid.uuid4().hex[:12]}"
    os.rename(out_path, retired)
    try:
        os.rename(staging, out_path)
    except BaseException:
        os.rename(retired, out_path)
        raise
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
    else:
        retired.unlink(missing_ok=True)


# Spark's own output files: what a folder written by an earlier run may hold.
_SPARK_OUTPUT_PATTERNS = ("part-*.parquet", "_SUCCESS", "*.crc")


def _is_spark_output(folder: Path) -> bool:
    """True for a real folder holding only Spark output files and hidden files (or nothing)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    for entry in folder.iterdir():
        if entry.is_symlink() or not entry.is_file():
            return False
        name = entry.name
        ours = any(fnmatch.fnmatch(name, pattern) for pattern in _SPARK_OUTPUT_PATTERNS)
        if not (ours or name.startswith(".")):
            return False
    return True


def _check_destination(out_path: Path, data_path, *, overwrite: bool) -> None:
    """Refuse to replace anything at ``out_path`` but an earlier scored table, unless told to.

    The destination is replaced as a whole, so a mistyped ``--out`` naming a user's folder
    would otherwise delete it.
    """
    if not out_path.exists() and not out_path.is_symlink():
        return
    if data_path is not None:
        resolved = out_path.resolve()
        data = Path(data_path).resolve()
        if data == resolved or resolved in data.parents:
            raise InputError(
                f"--out {out_path}: it holds the cohort being scored ({data_path}); "
                "choose another destination"
            )
    if overwrite or _is_spark_output(out_path):
        return
    kind = "folder" if out_path.is_dir() and not out_path.is_symlink() else "file"
    raise InputError(
        f"--out {out_path}: an existing {kind} that is not an earlier Spark output; "
        "accepted: a new path, or a folder holding only part-*.parquet, _SUCCESS, *.crc "
        "and hidden files (pass --overwrite to replace it anyway)"
    )


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
