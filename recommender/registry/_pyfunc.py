"""The one model artifact: an MLflow pyfunc model wrapping a RecommendationModel.

The fitted bundle is stored as a joblib file among the model's artifacts and loaded in
``load_context``; the wrapper adds nothing but the pyfunc calling convention, so the CLI, the
service and MLflow's own serving (``mlflow models serve``, ``mlflow.pyfunc.spark_udf``) all run
the same ``score``.
Importing this module imports MLflow; :mod:`recommender.registry` does so only when needed.
"""

from __future__ import annotations

import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from recommender.cohort import CRISIS_COLUMN
from recommender.errors import InputError
from recommender.model import RecommendationModel
from recommender.policy import SafetyRules, crisis_flags, triaged_scores
from recommender.registry._store import quiet_pyfunc_logger

__all__ = [
    "RecommenderPyfunc",
    "log_pyfunc",
    "model_requirements",
    "ARTIFACT_KEY",
    "DEFAULT_PARAMS",
]

ARTIFACT_KEY = "recommendation_model"
# Inference parameters a caller may pass as ``predict(rows, params={...})``: the interval level
# and the ranking's overlap threshold default to the service's (configs/serve.yaml).
DEFAULT_PARAMS = {"alpha": 0.1, "contributions": True, "max_overlap": 0.5}
# The project's distribution: its core dependencies (no extras) are what a scoring environment
# needs; the package's own code travels with the model (code_paths), not as a requirement.
_DISTRIBUTION = "burnout-recommender"
# Used when the project runs from a source tree that was never installed.
_FALLBACK_REQUIREMENTS = (
    "mlflow",
    "lightgbm",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "joblib",
    "pyarrow",
    "pydantic",
    "pyyaml",
    "matplotlib",
    "sqlalchemy",
    "rich",
)


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a :class:`~recommender.model.RecommendationModel`.

    ``predict(profiles, params={"alpha": 0.1, "contributions": True, "max_overlap": 0.5})``
    returns the scored table of :meth:`RecommendationModel.score`: ``person_id``,
    ``recommended``, ``ranking_meaningful``, ``benefit_established``,
    ``effect_/lower_/upper_<arm>``, the secondary outcomes' ``effect_/lower_/upper_<outcome>_<arm>``,
    ``outside_training_data``, ``contrib_<feature>`` of the recommended arm versus usual care,
    then ``safety_level`` and ``referral`` (:func:`recommender.policy.triaged_scores`).

    A row whose optional ``crisis_risk`` reads as true, or cannot be read either way, is never
    given to the model: it gets the crisis resources in ``referral`` and nothing else, as from
    ``recommender score`` and the service. The safety rules are the service's at logging time
    (``safety``), carried inside the model so that an environment without the project's
    ``serve.yaml`` still has them.
    """

    def __init__(self, model: RecommendationModel | None = None, safety: SafetyRules | None = None):
        # Set when built in process (before logging) or by load_context after loading.
        self.model = model
        self.safety = safety

    def load_context(self, context) -> None:
        self.model = joblib.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        options = {**DEFAULT_PARAMS, **(params or {})}
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        model_input = model_input.reset_index(drop=True)
        # Unreadable flags count as set: the person gets the resources, the others their scores.
        crisis = crisis_flags(model_input, strict=False)
        _check_profiles(model_input, crisis, self.model, self.safety)
        kinds = {"alpha": float, "contributions": bool, "max_overlap": float}
        scored = self.model.score(
            model_input.loc[~crisis],
            **{name: kind(options[name]) for name, kind in kinds.items() if name in options},
        )
        return triaged_scores(scored, model_input, self.safety, crisis).reset_index(drop=True)


def _check_profiles(rows: pd.DataFrame, crisis, model: RecommendationModel, safety) -> None:
    """Refuse rows that break the data contract, every problem named, as ``recommender score``
    refuses a file: MLflow's schema checks only types, so an ``ee`` of 99 or an ``age`` of 5
    would otherwise be ranked. The error still gives the crisis resources of the rows flagged
    for crisis risk, which a refusal must not withhold.
    """
    from recommender.cohort import validate_cohort
    from recommender.policy import triage_table

    profiles = rows
    if "person_id" not in rows.columns:  # optional here: scores are then keyed by row
        profiles = rows.assign(person_id=[f"row {i}" for i in range(len(rows))])
    report = validate_cohort(profiles, extra_features=model.extra_features)
    if report.ok:
        return
    message = f"the rows do not meet the data contract:\n{report.format()}"
    if crisis.any():
        flagged = np.flatnonzero(crisis)
        referral = triage_table(rows.iloc[flagged[:1]], safety, [True])["referral"].iloc[0]
        listed = ", ".join(str(i) for i in flagged[:20]) + (", ..." if len(flagged) > 20 else "")
        message += f"\nrows flagged for crisis risk (rows {listed}): {referral}"
    raise InputError(message, problems=list(report.errors))


def _lenient_inputs(signature):
    """The inferred input schema with ``person_id`` optional (scores are then keyed by row),
    and an optional ``crisis_risk`` of any type (true/false, "yes", 1: every form the one flag
    rule reads, and an unreadable one counts as set, so no type check may refuse it first).

    Integer columns stay ``long``: MLflow will not cast int64 to float64 "safely", so declaring
    them double would refuse the contract's own integers.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    columns = []
    for spec in signature.inputs.inputs:
        if spec.name != CRISIS_COLUMN:
            columns.append(ColSpec(spec.type, spec.name, required=spec.name != "person_id"))
    columns.append(ColSpec(AnyType(), CRISIS_COLUMN, required=False))
    return ModelSignature(
        inputs=Schema(columns), outputs=signature.outputs, params=signature.params
    )


def _text_outputs(signature):
    """The output schema with columns of no inferred type (``outside_training_data`` of a
    model that records no support: missing in every row) declared optional text, which Spark
    can hold (it has no column of any type)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, DataType, Schema

    columns = [
        spec if isinstance(spec.type, DataType) else ColSpec("string", spec.name, required=False)
        for spec in signature.outputs.inputs
    ]
    return ModelSignature(inputs=signature.inputs, outputs=Schema(columns), params=signature.params)


def model_requirements() -> list[str]:
    """The scoring environment's pip requirements: the core dependencies, pinned.

    Pinned to the versions installed here, which ``make venv`` installs from
    ``requirements/runtime.lock``; joblib (the bundle's file format) is named explicitly. Extras
    (service, Spark, PostgreSQL, benchmarks) are not needed to score and are left out.
    """
    from packaging.requirements import Requirement

    try:
        declared = metadata.requires(_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        declared = []
    names = [
        Requirement(text).name for text in declared if Requirement(text).marker is None
    ] or list(_FALLBACK_REQUIREMENTS)
    pins = []
    for name in dict.fromkeys([*names, "joblib"]):
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def _code_paths() -> list[str]:
    # The whole `recommender` package: the pickled bundle and this wrapper refer to its classes
    # by module, so a scoring environment without the project imports them from the model's
    # own code/ folder (MLflow puts it on sys.path when loading). pipelines/ is not needed to
    # score and stays out.
    import recommender

    return [str(Path(recommender.__file__).resolve().parent)]


def log_pyfunc(
    model: RecommendationModel,
    input_example: pd.DataFrame,
    *,
    safety: SafetyRules,
    name: str = "model",
):
    """Log ``model`` as a pyfunc model of the active run (not registered).

    Parameters
    ----------
    model : RecommendationModel
        The fitted bundle.
    input_example : DataFrame
        A few profile rows in the data contract's plain types; with the model's output on them
        it defines the signature.
    safety : SafetyRules
        The service's safety rules (``serve.yaml``), carried in the model: its ``referral``
        column and the crisis resources of rows flagged in ``crisis_risk``.
    name : str, default "model"
        The logged model's name within the run.

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    if not isinstance(safety, SafetyRules):
        raise InputError(f"safety must be SafetyRules, got {type(safety).__name__}")
    wrapper = RecommenderPyfunc(model, safety)
    example = input_example.reset_index(drop=True)
    output = wrapper.predict(None, example, dict(DEFAULT_PARAMS))
    with warnings.catch_warnings():
        # MLflow's hints (integer columns, type hints on predict) do not apply: the data
        # contract has no missing values and the signature is given explicitly.
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, output, params=dict(DEFAULT_PARAMS))
    signature = _text_outputs(_lenient_inputs(signature))
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings(), quiet_pyfunc_logger():
        warnings.simplefilter("ignore", UserWarning)
        path = Path(folder) / "recommendation_model.joblib"
        joblib.dump(model, path)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=RecommenderPyfunc(safety=safety),
            artifacts={ARTIFACT_KEY: str(path)},
            signature=signature,
            input_example=example,
            pip_requirements=model_requirements(),
            code_paths=_code_paths(),
            metadata={
                "catalog_version": model.catalog_version,
                "features": model.feature_names,
                "arms": list(model.arms),
                "outcomes": model.outcomes,
            },
        )
