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

This module runs the job. The Spark session is set up in :mod:`pipelines._batch_session`, the
cohort read and validated in :mod:`pipelines._batch_cohort`, its crisis-flagged rows found and
given their resources when the run fails or is stopped in :mod:`pipelines._batch_crisis`, and
the destination checked and replaced in :mod:`pipelines._batch_output`.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines._batch_cohort import read_cohort_spark, validate_cohort_spark
from pipelines._batch_output import _check_destination, _publish
from pipelines._batch_session import (
    _cancellable,
    _quiet_interrupted_call,
    _quiet_pandas_warning,
    _require_spark,
    _session_conf,
    spark_error_message,
    spark_session,
)
from pipelines._batch_crisis import (
    check_crisis_column,
    crisis_rows_when_stopped,
    flagged_rows_on_spark,
    interrupt_behind,
    refused_with_crisis_rows,
)
from pipelines._crisis_rows import beside
from recommender.errors import InputError, ModelUnavailable
from recommender.policy import CRISIS_COLUMN

__all__ = [
    "BatchSummary",
    "spark_session",
    "read_cohort_spark",
    "validate_cohort_spark",
    "score_with_spark",
    "spark_error_message",
    "flagged_rows_on_spark",
    "interrupt_behind",
]

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
        Rows per recommended arm, every arm of the model listed (0 when never recommended);
        rows flagged for crisis risk under ``"(crisis: not scored)"``.
    partitions : int
        Spark partitions the scoring ran on.
    columns : list of str
        Columns of the scored table.
    notes : list of str
        What the table's figures need said: the arms the catalog in force renamed, written
        under their new ids (:func:`recommender.model.renaming_note`).
    """

    path: Path
    rows: int
    model_uri: str
    version: str | None
    arm_counts: dict = field(default_factory=dict)
    partitions: int = 0
    columns: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def recommendation_mix(self) -> dict:
        """Share of rows per recommended arm."""
        return {arm: (n / self.rows if self.rows else 0.0) for arm, n in self.arm_counts.items()}


# ---------------------------------------------------------------------------------- scoring
def score_with_spark(
    model_uri: str,
    data_path,
    out_path,
    *,
    master: str = "local[2]",
    partitions: int | None = None,
    alpha: float | None = None,
    contributions: bool = False,
    batch_rows: int = 50_000,
    overwrite: bool = False,
    serve_config=None,
    max_overlap: float | None = None,
) -> BatchSummary:
    """Validate a cohort, score every row with the registered model on Spark, write Parquet.

    The columns are those of ``recommender score`` (:meth:`RecommendationModel.score`):
    ``person_id``, ``recommended``, ``ranking_meaningful``, ``benefit_established`` (null for
    every row of a model registered before scored tables had them: re-register it to get
    them), each outcome's effects and bounds, ``outside_training_data``, contributions if asked,
    then ``safety_level`` and ``referral`` (the service's triage,
    :func:`recommender.policy.triage_table`). An arm the intervention catalog in force renamed
    (``renamed_from``) is written under its new id, in ``recommended`` and in its columns'
    names, with what the model learnt under the former one, as ``recommender score`` writes it
    (:func:`recommender.model.served_under`); the summary's ``notes`` say so. A row flagged in
    the optional ``crisis_risk`` column gets crisis resources in ``referral`` and no
    recommendation or effects (the UDF scores whole Arrow batches, so its figures are computed
    and then blanked).

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
    alpha : float, optional
        Intervals are two-sided ``1 - alpha``; default: the service's ``alpha``.
    contributions : bool, default False
        Add ``contrib_<feature>`` columns explaining the recommended arm.
    batch_rows : int, default 50,000
        Rows per Arrow batch handed to validation and to the model (Spark's default, 10,000,
        pays the model's fixed cost per call five times as often); restored afterwards.
    overwrite : bool, default False
        Replace whatever is at ``out_path``, even a folder that is not an earlier Spark output.
    serve_config : path, optional
        The service's ``serve.yaml``, whose safety rules, ``alpha`` and ``ranking.max_overlap``
        apply (default: ``$RECOMMENDER_SERVE_CONFIG``, else the project's, as the service).
    max_overlap : float, optional
        The overlap threshold of ``ranking_meaningful``; default: the service's.

    Returns
    -------
    BatchSummary

    Raises
    ------
    InputError
        The cohort breaks the data contract (every problem listed with row, column, value and
        what is accepted), the model is unknown, an argument is out of range, ``out_path``
        holds something other than an earlier Spark output (without ``overwrite``), or pyspark
        or Java is not installed. Nothing is written, but for the rows flagged for crisis
        risk when the model, the contract, ``partitions`` or a crisis flag that cannot be read
        fails the run: their resources (and those of the rows whose flag cannot be read) go to
        ``<out>.crisis.csv``, which the error names.

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

    from pipelines.score import CRISIS_NOT_SCORED, service_settings
    from recommender.catalog import load_catalog
    from recommender.model import JUDGEMENT_COLUMNS, OUTSIDE_COLUMN, renamed_for, renaming_note
    from recommender.registry import spark_scorer

    _check_whole_numbers(batch_rows=batch_rows)  # not a CLI option: said before any work
    service = service_settings(serve_config)
    rules = service.safety
    alpha = service.alpha if alpha is None else alpha
    max_overlap = service.max_overlap if max_overlap is None else max_overlap
    spark = spark_session(master)
    with (
        _quiet_interrupted_call(),
        _quiet_pandas_warning(),
        _session_conf(
            spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": str(int(batch_rows))}
        ),
    ):
        # The file first: when the model or the contract fails, the rows flagged for crisis
        # risk still get their resources (``<out>.crisis.csv``, named in the error).
        cohort = read_cohort_spark(spark, data_path)
        with crisis_rows_when_stopped(spark, cohort, rules, out_path) as published:
            try:
                # with the file read: a refused option still gives the crisis rows their resources
                _check_whole_numbers(partitions=partitions)
                scorer = spark_scorer(
                    spark,
                    model_uri,
                    alpha=alpha,
                    contributions=contributions,
                    max_overlap=max_overlap,
                )
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
                        f"{data_path} does not meet the data contract:\n{report.format()}{more}",
                        problems=report.errors,
                    )
                flagged = CRISIS_COLUMN in cohort.columns
                if flagged:
                    check_crisis_column(cohort, offsets, data_path)
                # The catalog in force, as recommender score reads it: the model's pyfunc
                # scores under the ids it learnt, and an arm this catalog renamed is written
                # under its new id (served_under's renaming, for the table Spark writes).
                renames = renamed_for(scorer.arms[1:], load_catalog())
            except (InputError, ModelUnavailable) as error:
                raise refused_with_crisis_rows(error, cohort, rules, out_path) from None
            rows = report.n_rows

            typed = cohort.select(
                *[_cast(F.col(c), scorer.input_types[c]).alias(c) for c in scorer.input_columns],
                *([F.col(CRISIS_COLUMN).cast("string").alias(CRISIS_COLUMN)] if flagged else []),
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
                    numbered.repartitionByRange(int(wanted), _ROW)
                    .sortWithinPartitions(_ROW)
                    .drop(_ROW)
                )
            safety_udf = _safety_udf(rules)
            model_columns = list(scorer.result_type.fieldNames())
            # A model registered before the scored tables said what the answers say of a ranking
            # returns neither judgement: the columns are there, in their place, and null.
            unjudged = [c for c in JUDGEMENT_COLUMNS if c not in model_columns]
            safety_input = [c for c in ("role", "ee", "dp", "pa") if c in typed.columns]
            safety_input += [CRISIS_COLUMN] if flagged else []
            scored = typed.select(
                scorer.udf(F.struct(*scorer.input_columns)).alias("scored"),
                safety_udf(F.struct(*safety_input)).alias("safety"),
            )
            crisis_row = F.col("safety.safety_level") == "crisis"
            # A model saved before support was recorded returns no such column: nothing is known
            # of where its rows lie, so the column is there and empty (null), as for the service.
            unknown = [] if OUTSIDE_COLUMN in model_columns else [OUTSIDE_COLUMN]
            named = _names_in_force(model_columns, renames, scorer.outcomes)

            def figure(c):
                value = F.col(f"scored.{c}")
                if c == "recommended":
                    value = _ids_in_force(value, renames)
                return F.when(crisis_row, F.lit(None)).otherwise(value).alias(named[c])

            model_column = {
                c: F.col(f"scored.{c}") if c == "person_id" else figure(c) for c in model_columns
            }
            model_column.update({c: F.lit(None).cast("boolean").alias(c) for c in unjudged})
            model_columns = [*model_columns[:2], *unjudged, *model_columns[2:]]
            scored = scored.select(
                *[model_column[c] for c in model_columns],
                *[F.lit(None).cast("string").alias(c) for c in unknown],
                "safety.safety_level",
                "safety.referral",
            )

            staging = out_path.parent / f".{out_path.name}.writing-{uuid.uuid4().hex[:12]}"
            out_path.parent.mkdir(parents=True, exist_ok=True)

            def write():
                scored.write.mode("errorifexists").parquet(str(staging))
                written = spark.read.parquet(str(staging))
                return written.groupBy("recommended").count().collect()

            try:
                mix = {
                    CRISIS_NOT_SCORED if r["recommended"] is None else r["recommended"]: int(
                        r["count"]
                    )
                    for r in _cancellable(spark, write)
                }
                if sum(mix.values()) != rows:
                    raise RuntimeError(
                        f"scored {sum(mix.values()):,} rows but the cohort has "
                        f"{rows:,}; nothing was written to {out_path}"
                    )
                _publish(staging, out_path, overwrite=overwrite)
                published()  # stopped from here on, the table stands and is said
                beside(out_path, "crisis").unlink(missing_ok=True)  # an earlier failed run's
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    arms = [renames.get(arm, arm) for arm in scorer.arms] or sorted(mix)
    arm_counts = {arm: mix.get(arm, 0) for arm in arms}
    arm_counts.update({arm: n for arm, n in mix.items() if arm not in arm_counts})
    return BatchSummary(
        path=out_path,
        rows=rows,
        model_uri=scorer.model_uri,
        version=scorer.version,
        arm_counts=arm_counts,
        partitions=int(wanted),
        columns=[*(named.get(c, c) for c in model_columns), *unknown, "safety_level", "referral"],
        notes=[] if not renames else [renaming_note(renames, scorer.version)],
    )


def _check_whole_numbers(**values) -> None:
    """Refuse a value that is not a whole number >= 1 (None: the default), naming it."""
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise InputError(f"{name} must be a whole number >= 1, got {value!r}")


def _names_in_force(columns, renames, outcomes) -> dict:
    """``column -> name written``: the figures of an arm ``renames`` (``learnt id -> id in
    force``) renamed under its new id, ``effect_/lower_/upper_<arm>`` and, for each secondary
    outcome of ``outcomes`` (primary first), ``effect_/lower_/upper_<outcome>_<arm>``, as
    :meth:`recommender.model.RecommendationModel.score` names them; any other column as it is.

    Examples
    --------
    >>> _names_in_force(["effect_b_old", "upper_dp_b_old", "effect_a"], {"b_old": "b"}, ["ee", "dp"])
    {'effect_b_old': 'effect_b', 'upper_dp_b_old': 'upper_dp_b', 'effect_a': 'effect_a'}
    """
    kinds = ("effect", "lower", "upper")
    prefixes = [f"{k}_" for k in kinds] + [f"{k}_{o}_" for k in kinds for o in outcomes[1:]]
    names = {p + old: p + new for p in prefixes for old, new in renames.items()}
    return {c: names.get(c, c) for c in columns}


def _ids_in_force(column, renames):
    """The Spark column of arm ids ``column`` with the arms ``renames`` renamed under their new
    ids."""
    from pyspark.sql import functions as F

    value = column
    for old, new in renames.items():
        value = F.when(column == old, F.lit(new)).otherwise(value)
    return value


def _safety_udf(rules):
    """A pandas UDF: (role, ee, dp, pa[, crisis_risk]) -> (safety_level, referral)."""
    from pyspark.sql.functions import pandas_udf

    from recommender.policy import crisis_flags, triage_table

    @pandas_udf("safety_level string, referral string")
    def safety(profiles: pd.DataFrame) -> pd.DataFrame:
        return triage_table(profiles, rules, crisis_flags(profiles)).reset_index(drop=True)

    return safety


def _number_rows(batches, *, offsets):
    """mapInPandas body: add the file row number (partition offset + position)."""
    from pyspark import TaskContext

    position = offsets[TaskContext.get().partitionId()]
    for batch in batches:
        batch[_ROW] = np.arange(position, position + len(batch), dtype=np.int64)
        position += len(batch)
        yield batch


def _cast(column, spark_type: str):
    if spark_type in ("bigint", "int", "smallint", "tinyint"):
        # Through double: validation accepts "42.0" as a whole number; ANSI casts of that text
        # straight to an integer refuse it.
        return column.cast("double").cast(spark_type)
    return column.cast(spark_type)
