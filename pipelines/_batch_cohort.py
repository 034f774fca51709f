"""The cohort in: read with Spark as written, then validated at the edge with the project's
own rules, run on each partition and translated into file row numbers on the driver.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines._batch_session import spark_error_message
from recommender.errors import InputError

__all__ = ["read_cohort_spark", "validate_cohort_spark"]

# Findings kept per check and partition; the rest are counted, so a file that is wrong in
# every row cannot fill the driver's memory with problem objects.
_MAX_LISTED_PER_PARTITION = 1000
# Distinct duplicated person_ids located to their rows; more are counted, not listed.
_MAX_DUPLICATE_IDS = 1000


def read_cohort_spark(spark, path):
    """Read a cohort file or folder as a Spark DataFrame, without coercing types.

    A CSV is read as :func:`recommender.cohort.read_cohort` reads it, so that both score the
    same rows or refuse the same file: its header as written, quotes doubled inside a quoted
    field (RFC 4180, pandas' reading; Spark's default takes a backslash, and kept the quotes
    of an id written ``"p,""x""``), a line break inside a quoted field, and without a spreadsheet's
    empty margins (:func:`recommender.cohort.without_empty_margins`). Every file of a folder of
    CSV part files is checked as one file is: UTF-8 text, and one header.

    Parameters
    ----------
    spark : SparkSession
    path : str or Path
        ``.parquet`` (a file or a folder of part files), ``.csv`` or ``.tsv``, uncompressed or
        compressed as ``.gz``, ``.bz2`` or ``.zst`` (a file or a folder of part files).

    Returns
    -------
    pyspark.sql.DataFrame
        CSV columns as strings (empty cells missing), Parquet columns as stored.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    parquet = name.endswith(".parquet") or (path.is_dir() and any(path.glob("*.parquet")))
    # Imported here, on the driver, as in _checked_text (Spark's workers import this module).
    from recommender.cohort import TEXT_SUFFIXES

    text = not parquet and name.endswith(TEXT_SUFFIXES)
    from pyspark.sql.types import StringType, StructField, StructType

    try:
        if parquet:
            _refuse_empty_parquet(path)
            return spark.read.parquet(str(path))
        if text:
            sep = "\t" if ".tsv" in name else ","
            names, quoted_breaks = _checked_text(path, sep)
            # No type inference: validation must see the text as written, like read_cohort.
            options = dict(
                header=True,
                sep=sep,
                escape='"',
                multiLine=quoted_breaks,  # reads each file whole: only when it must
            )
            columns = spark.read.csv(str(path), inferSchema=False, **options).columns
            # Every column as text, and the line of a row with other than the header's count
            # of fields kept aside: Spark drops the fields past the header's silently.
            text_schema = StructType([StructField(c, StringType()) for c in [*columns, _MALFORMED]])
            frame = spark.read.csv(
                str(path), schema=text_schema, columnNameOfCorruptRecord=_MALFORMED, **options
            )
            return _table_rows(frame, names, path=path, sep=sep)
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - Spark's AnalysisException and friends
        raise InputError(f"{path}: cannot be read: {spark_error_message(error)}") from None
    raise InputError(
        f"{path}: unknown file type; accepted are .parquet (file or folder), and .csv or .tsv "
        f"(file or folder), uncompressed or compressed as {_checked_codecs()}"
    )


def _checked_text(path: Path, sep: str) -> tuple[list, bool]:
    """The header as written of a CSV file or folder of part files, and whether any of its
    files breaks a line inside a quoted field; refuses a file that is not UTF-8 text (Spark
    would read each such byte as U+FFFD, silently) or a part whose header differs (Spark takes
    one file's header for all: the other parts' columns would be read under its names)."""
    # Imported here, on the driver: Spark's Python workers import this module too, and once
    # the model is loaded there `recommender` is the copy saved with the model, which may
    # predate these names (found: ImportError in a reused session scoring an older model).
    from recommender.cohort import check_utf8, empty_file_error, read_csv_header

    files = _text_files(path)
    if not files:  # a folder of 0-byte parts only: Spark said "reduce() of empty iterable"
        raise empty_file_error(path, sep=sep)
    names = None
    for part in files:
        if part.name.lower().endswith(_UNCHECKED_CODECS):
            raise InputError(
                f"{part}: compressed as {part.suffix}, which cannot be checked for UTF-8 text "
                f"here; accepted: part files uncompressed or compressed as {_checked_codecs()}"
            )
        check_utf8(part)
        header = read_csv_header(part, sep=sep)
        if names is None:
            names, first = header, part
        elif header != names:
            raise InputError(
                f"{part}: its header {header!r} differs from {first.name}'s {names!r}; "
                "accepted: part files with the same columns in the same order"
            )
    return names or [], any(_quoted_line_break(part) for part in files)


def _refuse_empty_parquet(path: Path) -> None:
    """Refuse a Parquet file or folder with no rows as :func:`recommender.cohort.read_cohort`
    does: 0-byte files only (Spark: "Unable to infer schema"), no columns, or a schema without
    rows. Read from the files' footers, without a Spark job."""
    import pyarrow.parquet as pq

    from recommender.cohort import empty_file_error

    files = [part for part in _text_files(path) if part.stat().st_size]
    if not files:
        raise empty_file_error(path, parquet=True)
    try:
        footers = [pq.read_metadata(part) for part in files]
    except Exception:  # noqa: BLE001 - not Parquet after all: Spark says what it says
        return
    if sum(footer.num_rows for footer in footers) == 0:
        columns = max(footer.num_columns for footer in footers)
        raise empty_file_error(path, parquet=True, columns=columns)


# Codecs Spark reads by suffix that the checks here do not read through: .lz4 and .snappy are
# Hadoop's own block formats (pyarrow reads the LZ4 frame format; Spark here failed on those
# files), .deflate is not read through yet. The checks read .gz, .bz2 and .zst
# (recommender.cohort.open_decompressed), which Spark reads too (tests/test_batch_more_dec06b.py).
_UNCHECKED_CODECS = (".deflate", ".lz4", ".snappy")


def _checked_codecs() -> str:
    """The codecs read through, named from recommender.cohort's table of text suffixes:
    ``".gz, .bz2 or .zst"``."""
    from recommender.cohort import TEXT_SUFFIXES

    codecs = [s.removeprefix(".csv") for s in TEXT_SUFFIXES if s.startswith(".csv.")]
    return f"{', '.join(codecs[:-1])} or {codecs[-1]}"


def _text_files(path: Path) -> list[Path]:
    """The files Spark reads for ``path``: itself, or a folder's files but for hidden ones
    (``_SUCCESS``, ``.crc``) and empty ones (0 bytes); a folder's parquet parts likewise."""
    if path.is_file():
        return [path]

    def hidden(part: Path) -> bool:
        return any(p.startswith((".", "_")) for p in part.relative_to(path).parts)

    return sorted(p for p in path.rglob("*") if p.is_file() and not hidden(p) and p.stat().st_size)


def _quoted_line_break(path: Path) -> bool:
    """Whether a line of ``path`` ends inside a quoted field (an odd count of quotes before
    it; doubled quotes count twice). Spark reads a file split at line breaks unless told
    otherwise, and split such a field into rows of their own. A quote inside an unquoted
    field may say yes where no field spans lines: the file is then read whole, as correctly."""
    from recommender.cohort import open_decompressed

    inside = 0
    with open_decompressed(path) as handle:
        while piece := handle.read(1 << 20):
            data = np.frombuffer(piece, dtype=np.uint8)
            quotes = np.cumsum(data == ord('"')) + inside
            breaks = (data == ord("\n")) | (data == ord("\r"))
            if (quotes[breaks] % 2).any():
                return True
            inside = int(quotes[-1] % 2)
    return False


def _table_rows(frame, names: list, *, path: Path, sep: str):
    """The table of a CSV read by Spark as :func:`recommender.cohort.read_cohort` reads it:
    columns named as written (Spark names a second ``ee`` ``ee11``, a blank name ``_c11``),
    without the spreadsheet margins :func:`recommender.cohort.without_empty_margins` drops
    (the columns with no name and no value, the rows of blank cells after the last row with a
    value; an empty row inside the table stays, to be reported by its row number), and
    refused, as pandas refuses it, when a row has more fields than the header.

    One pass over the file, in the JVM: a cell is blank as ``without_empty_margins`` says
    (missing or white space alone). Rows are told apart by Spark's row id (the partition in
    its upper bits, the row's place in it below), which every later pass reads alike.
    """
    from functools import reduce

    from pyspark.sql import functions as F

    from recommender.cohort import unnamed_column

    columns = [c for c in frame.columns if c != _MALFORMED]
    position = F.monotonically_increasing_id()

    def filled(column):
        cell = F.col(f"`{column}`")
        return cell.isNotNull() & ~cell.rlike(r"^(?U)\s*$")

    unnamed = [c for c, written in zip(columns, names) if unnamed_column(written)]
    cells = frame.select(
        position.alias("at"),
        F.when(reduce(lambda a, b: a | b, map(filled, columns)), position).alias("row"),
        F.col(_MALFORMED).isNotNull().cast("int").alias("malformed"),
        *[filled(c).cast("int").alias(f"u{i}") for i, c in enumerate(unnamed)],
    )
    parts = (
        cells.groupBy(F.shiftright("at", _ROW_BITS).alias("part"))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.max("row").alias("last"),
            F.sum("malformed").alias("malformed"),
            *[F.max(f"u{i}").alias(f"u{i}") for i in range(len(unnamed))],
        )
        .collect()
    )
    if any(p["malformed"] for p in parts):
        _refuse_long_rows(frame, parts, columns, path=path, sep=sep)
    empty = {c for i, c in enumerate(unnamed) if not any(p[f"u{i}"] for p in parts)}
    kept = [(c, written) for c, written in zip(columns, names) if c not in empty]
    frame = frame.select(*[F.col(f"`{c}`").alias(written) for c, written in kept])
    last = max((p["last"] for p in parts if p["last"] is not None), default=None)
    if last is None:
        return frame.where(F.lit(False))
    return frame.where(position <= last)


# Spark's row id: the partition in the bits above these, the row's place in it in these.
_ROW_BITS = 33
_MALFORMED = "_malformed_line"


def _refuse_long_rows(frame, parts, columns, *, path: Path, sep: str) -> None:
    """Raise naming the first row with more fields than the header, if there is one (Spark
    keeps the line of a row with fewer as well, which pandas reads with missing cells)."""
    from pyspark.sql import functions as F

    # Every column read: Spark compares a line's fields with the columns it parses, so a
    # narrower read would not see the line's extra fields.
    lines = frame.select(F.monotonically_increasing_id().alias("at"), "*").where(
        F.col(_MALFORMED).isNotNull()
    )
    expected = len(columns)
    long = (
        lines.mapInPandas(
            lambda batches: _field_counts(batches, sep=sep, more_than=expected),
            "at long, fields int",
        )
        .orderBy("at")
        .first()
    )
    if long is None:
        return
    offsets, before = {}, 0
    for part in sorted(parts, key=lambda p: p["part"]):
        offsets[part["part"]], before = before, before + part["rows"]
    at = long["at"]
    row = offsets[at >> _ROW_BITS] + (at & ((1 << _ROW_BITS) - 1))
    raise InputError(
        f"{path}: cannot be read as csv: Expected {expected} fields in row {row} (a CSV line "
        f"is row + 2), saw {long['fields']}"
    )


def _field_counts(batches, *, sep: str, more_than: int):
    """mapInPandas body: (row id, fields) of the lines with more than ``more_than`` fields,
    split as pandas splits them (quotes doubled inside a quoted field)."""
    import csv
    import io

    for batch in batches:
        counts = np.array(
            [
                len(next(csv.reader(io.StringIO(line), delimiter=sep), []))
                for line in batch[_MALFORMED]
            ],
            dtype=np.int32,
        )
        long = counts > more_than
        yield pd.DataFrame({"at": batch["at"].to_numpy()[long], "fields": counts[long]})


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

    # Only the columns the rules look at go to the workers: a column the contract ignores is
    # noted above, and its name may not even resolve in Spark ('notes.text' reads as a field).
    from pyspark.sql import functions as F

    ignored = {c.column for c in column_checks if c.rule == "unknown_column"}
    checked = frame.select(*[F.col(f"`{c}`") for c in columns if c not in ignored])
    summary = checked.mapInPandas(
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
