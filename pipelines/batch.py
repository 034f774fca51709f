"""Batch scoring on Spark: a cohort too large for one process in, the scored table out.

Every partition is scored by the very function ``recommender score`` runs
(:func:`pipelines.score.scored_table`), with the registered model met with the intervention
catalog in force as score meets it (:func:`pipelines.score.model_in_force`): the catalog's arms,
eligibility rules, order and renamed ids decide on Spark as in process, so every row gets
exactly what ``recommender score`` and the service would give it. The model, as learnt, reaches
each Python worker once as a broadcast, the catalog with each task, as data. The steps:

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
3. **Score** every partition's Arrow batches with ``mapInPandas``: each batch's crisis-flagged
   rows get their resources and no ranking, the others are ranked, as ``score`` does; when the
   input has fewer partitions than Spark has cores (a Parquet file with one row group is one
   partition), rows are numbered and spread by range so that every core works and the output
   keeps the input's order.
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
from functools import partial
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
from recommender.cohort import PROFILE_COLUMNS
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
        Rows per recommended arm, as ``score`` counts them
        (:func:`pipelines.score.recommendation_counts`): every arm ranked under the catalog in
        force (0 when never recommended), then the rows flagged for crisis risk under
        ``"(crisis: not scored)"``.
    partitions : int
        Spark partitions the scoring ran on.
    columns : list of str
        Columns of the scored table.
    notes : list of str
        What the table's figures need said, as ``score`` says it
        (:func:`pipelines.score.model_notes`): the data the model learned from, the arms it
        gives one effect for everyone, the arms the catalog in force renamed.
    warnings : list of str
        As ``score``'s: the arms of the catalog in force the model never learnt.
    """

    path: Path
    rows: int
    model_uri: str
    version: str | None
    arm_counts: dict = field(default_factory=dict)
    partitions: int = 0
    columns: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

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
    ``person_id``, ``recommended``, ``ranking_meaningful``, ``benefit_established``, each
    outcome's effects and bounds, ``outside_training_data``, contributions if asked,
    then ``safety_level`` and ``referral`` (the service's triage,
    :func:`recommender.policy.triage_table`): each partition is scored by
    :func:`pipelines.score.scored_table`, as ``recommender score`` scores the whole file, with the
    intervention catalog in force (its arms, eligibility rules and order; an arm it renamed is
    written under its new id, with what the model learnt under the former one, and the
    summary's ``notes`` say so). A row flagged in the optional ``crisis_risk`` column gets crisis
    resources in ``referral`` and no recommendation, judgement or effects.

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

    from pipelines.score import (
        extra_features,
        model_in_force,
        model_notes,
        recommendation_counts,
        service_settings,
    )

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
                # The model met with the catalog in force, as recommender score meets it.
                loaded = model_in_force(model_uri)
                extra = extra_features(loaded.served)
                report, offsets, unlisted = validate_cohort_spark(cohort, extra_features=extra)
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
            except (InputError, ModelUnavailable) as error:
                raise refused_with_crisis_rows(error, cohort, rules, out_path) from None
            rows = report.n_rows

            # The columns score reads of a file, as read: the scoring below is score's own.
            read = {"person_id", *PROFILE_COLUMNS, *extra, CRISIS_COLUMN}
            profiles = cohort.select(*[F.col(f"`{c}`") for c in cohort.columns if c in read])
            current = profiles.rdd.getNumPartitions()
            wanted = partitions or max(current, spark.sparkContext.defaultParallelism)
            if wanted != current:
                # Range partitioning on the file row number keeps the input's order in the output.
                numbered = profiles.mapInPandas(
                    lambda batches: _number_rows(batches, offsets=offsets),
                    StructType([*profiles.schema.fields, StructField(_ROW, LongType(), False)]),
                )
                profiles = (
                    numbered.repartitionByRange(int(wanted), _ROW)
                    .sortWithinPartitions(_ROW)
                    .drop(_ROW)
                )
            options = dict(alpha=alpha, contributions=contributions, max_overlap=max_overlap)
            columns = _scored_columns(loaded, profiles.columns, rules, options)
            # Each Python worker unpickles the model once (a broadcast is kept per worker) and
            # is given the catalog in force with the task, as data: no path it may not see.
            model = spark.sparkContext.broadcast(loaded.learnt)
            score_partition = partial(
                _score_partition,
                model=model,
                catalog=loaded.catalog,
                rules=rules,
                options=options,
                columns=columns,
            )
            scored = profiles.mapInPandas(score_partition, _scored_schema(columns))

            staging = out_path.parent / f".{out_path.name}.writing-{uuid.uuid4().hex[:12]}"
            out_path.parent.mkdir(parents=True, exist_ok=True)

            def write():
                scored.write.mode("errorifexists").parquet(str(staging))
                written = spark.read.parquet(str(staging))
                return written.groupBy("recommended").count().collect()

            try:
                mix = {r["recommended"]: int(r["count"]) for r in _cancellable(spark, write)}
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
            finally:
                model.destroy()

    arms = loaded.served.recommendable_arms(catalog=loaded.catalog)
    arm_counts = recommendation_counts(mix, arms)  # as score counts them
    return BatchSummary(
        path=out_path,
        rows=rows,
        model_uri=loaded.ref.uri,
        version=loaded.ref.version,
        arm_counts=arm_counts,
        partitions=int(wanted),
        columns=list(columns),
        notes=model_notes(loaded.served, loaded.renamed),
        warnings=[] if loaded.unlearnt is None else [loaded.unlearnt],
    )


def _check_whole_numbers(**values) -> None:
    """Refuse a value that is not a whole number >= 1 (None: the default), naming it."""
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise InputError(f"{name} must be a whole number >= 1, got {value!r}")


def _scored_columns(loaded, read: list, rules, options: dict) -> list:
    """The scored table's columns: those :func:`pipelines.score.scored_table` gives a cohort of
    columns ``read`` with no rows, as every partition gives them."""
    from pipelines.score import scored_table

    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in read})
    table = scored_table(
        loaded.served, empty, np.zeros(0, dtype=bool), rules, catalog=loaded.catalog, **options
    )
    return list(table.columns)


def _scored_schema(columns: list):
    """The Spark schema of the scored table: text, the judgements (booleans), the figures."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    from recommender.model import JUDGEMENT_COLUMNS, OUTSIDE_COLUMN
    from recommender.policy import SAFETY_COLUMNS

    text = {"person_id", "recommended", OUTSIDE_COLUMN, *SAFETY_COLUMNS}

    def kind(column):
        if column in text:
            return StringType()
        return BooleanType() if column in JUDGEMENT_COLUMNS else DoubleType()

    return StructType([StructField(c, kind(c), True) for c in columns])


def _score_partition(batches, *, model, catalog, rules, options: dict, columns: list):
    """mapInPandas body: each batch scored by :func:`pipelines.score.scored_table`, the
    function ``recommender score`` runs, with the model met with ``catalog`` (the catalog in
    force) as score meets it; ``model``: the broadcast of the model as learnt."""
    from pipelines.score import scored_table
    from recommender.model import served_under
    from recommender.policy import crisis_flags

    served, _ = served_under(model.value, catalog)
    for batch in batches:
        # A flag that cannot be read was refused on the driver: every flag reads here.
        crisis = crisis_flags(batch, strict=False)
        table = scored_table(served, batch, crisis, rules, catalog=catalog, **options)
        yield _arrow_ready(table[columns])


def _arrow_ready(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with text and boolean columns as Python objects (None where missing), which
    Arrow converts to the schema whatever pandas dtype score gave them."""
    out = table.copy()
    for column in out.columns:
        if not pd.api.types.is_float_dtype(out[column].dtype):
            values = out[column].astype(object)
            out[column] = values.where(values.notna(), None)
    return out


def _number_rows(batches, *, offsets):
    """mapInPandas body: add the file row number (partition offset + position)."""
    from pyspark import TaskContext

    position = offsets[TaskContext.get().partitionId()]
    for batch in batches:
        batch[_ROW] = np.arange(position, position + len(batch), dtype=np.int64)
        position += len(batch)
        yield batch
