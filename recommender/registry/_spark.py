"""The one model artifact as a Spark UDF, for batch scoring of cohorts too large for one process.

``mlflow.pyfunc.spark_udf`` lives here because this package is the only one that imports MLflow.
The UDF runs the very pyfunc ``predict`` the service and ``recommender score`` run, so a row
scored on Spark gets the same recommendation and effects as the same row scored in process.

Its result is a Spark struct built from the model's own output signature, so the arms a model
was trained on (configuration, not code) decide the columns; contributions are left out unless
asked for, because the scored table of the data contract does not need them and they cost one
tree-explanation pass per recommended arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse
from urllib.request import url2pathname

from recommender.cohort import CRISIS_COLUMN, FEATURE_COLUMNS
from recommender.errors import InputError
from recommender.policy import SAFETY_COLUMNS
from recommender.registry._load import readable_uri, resolve_model
from recommender.registry._store import mlflow_session, quiet_pyfunc_logger

__all__ = ["SparkScorer", "spark_scorer"]

_CONTRIBUTION_PREFIX = "contrib_"
# The Python workers load the model themselves; without these they draw a download progress
# bar per task into the user's terminal.
_WORKER_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


@dataclass(frozen=True)
class SparkScorer:
    """A registered model ready to score a Spark DataFrame.

    Attributes
    ----------
    udf : callable
        The pandas UDF; call it on ``struct(*input_columns)``; it returns ``result_type``.
    model_uri : str
        The URI that was loaded (``models:/burnout-recommender/3`` for registered versions).
    version : str or None
        The registered version, when the model is one.
    input_columns : tuple of str
        The model's input columns (its signature), in order.
    input_types : dict
        ``column -> "string" | "long" | "double" | ...`` from the signature; cast to these first.
    result_type : pyspark.sql.types.StructType
        One field per output column: ``person_id``, ``recommended``, ``ranking_meaningful``,
        ``benefit_established`` (models registered before they existed lack both),
        ``effect_<arm>``,
        ``lower_<arm>``, ``upper_<arm>``, ``effect_<outcome>_<arm>``, ``lower_<outcome>_<arm>``,
        ``upper_<outcome>_<arm>`` (and ``contrib_*`` if asked).
    features : tuple of str
        The model's feature columns.
    extra_features : tuple of str
        Features outside the data contract (a program's own columns named at training).
    arms : tuple of str
        Control first, then the treatment arms, under the ids the model learnt them by.
    outcomes : tuple of str
        The outcomes with a fitted model, primary first (empty when the model records none).
    """

    udf: object
    model_uri: str
    version: str | None
    input_columns: tuple
    input_types: dict
    result_type: object
    features: tuple
    extra_features: tuple
    arms: tuple
    outcomes: tuple = ()

    @property
    def output_columns(self) -> tuple:
        return tuple(self.result_type.fieldNames())


def spark_scorer(
    spark, model: str, *, alpha: float = 0.1, contributions: bool = False, max_overlap: float = 0.5
) -> SparkScorer:
    """Wrap ``model`` as a Spark UDF with ``mlflow.pyfunc.spark_udf`` (``env_manager="local"``).

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The executors must share this Python environment (local mode, or a cluster built from
        the same lock file): ``env_manager="local"`` does not rebuild it.
    model : str
        ``models:/burnout-recommender@champion``, a version, an alias, ``runs:/<id>/model`` or a
        folder (see :func:`recommender.registry.resolve_model`).
    alpha : float, default 0.1
        Intervals are two-sided ``1 - alpha``.
    contributions : bool, default False
        Also return ``contrib_<feature>`` columns explaining the recommended arm.
    max_overlap : float, default 0.5
        The service's ``ranking.max_overlap`` (see ``ranking_meaningful``); a model registered
        before the scored tables had ``ranking_meaningful`` ignores it.

    Returns
    -------
    SparkScorer

    Raises
    ------
    InputError
        When the model is unknown, or it has no output signature to build the struct from.

    Examples
    --------
    >>> from pyspark.sql.functions import struct  # doctest: +SKIP
    >>> scorer = spark_scorer(spark, "models:/burnout-recommender@champion")  # doctest: +SKIP
    >>> scored = cohort.select(scorer.udf(struct(*scorer.input_columns)).alias("s"))  # doctest: +SKIP
    >>> scored.select("s.*").write.parquet("scored.parquet")  # doctest: +SKIP
    """
    if not 0 < float(alpha) < 1:
        raise InputError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    if not 0 <= float(max_overlap) <= 1:
        raise InputError(f"max_overlap must lie between 0 and 1, got {max_overlap!r}")
    ref = resolve_model(model)
    # a home moved or copied: its own copy, not the original's
    source = _local_path(readable_uri(ref))
    with mlflow_session() as mlflow, quiet_pyfunc_logger():
        from mlflow.exceptions import MlflowException

        try:
            info = mlflow.models.get_model_info(source)
        except (MlflowException, OSError) as error:
            raise InputError(f"cannot load model {model!r} ({ref.uri}): {error}") from None
        signature = info.signature
        if signature is None or signature.outputs is None or signature.inputs is None:
            raise InputError(
                f"model {ref.uri} has no input/output signature; Spark scoring "
                "needs it to know the columns (log it with recommender train)"
            )
        result_type = _result_struct(signature.outputs, contributions=contributions)
        params = {"alpha": float(alpha), "contributions": bool(contributions)}
        if "max_overlap" in {p.name for p in (signature.params.params if signature.params else [])}:
            params["max_overlap"] = float(max_overlap)
        udf = mlflow.pyfunc.spark_udf(
            spark,
            source,
            result_type=result_type,
            env_manager="local",
            params=params,
            extra_env=_WORKER_ENV,
        )
    from mlflow.types.schema import Schema

    # The job reads the crisis flags and triages every row itself, with the serve.yaml of the
    # day: the model is given neither the flag nor asked for its (logging-time) safety columns.
    inputs = Schema([c for c in signature.inputs.inputs if c.name != CRISIS_COLUMN])
    inputs = inputs.as_spark_schema()
    metadata = dict(info.metadata or {})
    features = tuple(metadata.get("features") or ())
    arms = tuple(metadata.get("arms") or ())
    return SparkScorer(
        udf=udf,
        model_uri=ref.uri,
        version=ref.version,
        input_columns=tuple(inputs.fieldNames()),
        input_types={f.name: f.dataType.simpleString() for f in inputs.fields},
        result_type=result_type,
        features=features,
        extra_features=tuple(f for f in features if f not in FEATURE_COLUMNS),
        arms=arms,
        outcomes=tuple(metadata.get("outcomes") or ()),
    )


def _local_path(uri: str) -> str:
    """``uri`` as MLflow reads a model's signature from it: a ``file:`` URI as its path.

    MLflow's ``get_model_info`` looks a ``file:`` URI up as if it were a path, finds nothing
    and says there is no MLmodel file, so a home moved or copied (whose versions are read
    from this home's copy, a ``file:`` URI) could not be batch-scored.

    Examples
    --------
    >>> _local_path("file:///srv/models/m-1/artifacts"), _local_path("models:/m/3")
    ('/srv/models/m-1/artifacts', 'models:/m/3')
    """
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    return url2pathname(parsed.path)


def _result_struct(outputs, *, contributions: bool):
    from pyspark.sql.types import StructField, StructType

    schema = outputs.as_spark_schema()
    # Nullable, as Arrow hands pandas output to Spark: a non-null field is refused outright
    # (ARROW_TYPE_MISMATCH) even though the model never returns a missing value.
    fields = [
        StructField(f.name, f.dataType, True)
        for f in schema.fields
        if (contributions or not f.name.startswith(_CONTRIBUTION_PREFIX))
        and f.name not in SAFETY_COLUMNS
    ]
    if not fields or fields[0].name != "person_id":
        raise InputError(
            f"the model's output signature {schema.fieldNames()} does not start "
            "with person_id; it is not a recommender model"
        )
    return StructType(fields)
