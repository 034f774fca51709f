"""MLflow tracking and registry: the only part of the project that imports MLflow.

MLflow is imported when a function here first needs it, never when this package is imported.
"""

from recommender.registry._aliases import (
    CHALLENGER,
    CHAMPION,
    aliases,
    champion_event,
    move_alias,
    promote,
    promotion_history,
    rollback,
    rollback_target,
)
from recommender.registry._fit import champion_concerns, run_concern
from recommender.registry._gate import (
    GateDecision,
    PolicyValue,
    estimate,
    gate_decision,
    policy_value_scores,
)
from recommender.registry._intent import complete_interrupted
from recommender.registry._load import (
    ModelRef,
    fetch_card,
    load_champion,
    load_model,
    load_pyfunc,
    TrainedVersion,
    resolve_model,
    run_tags,
    versions_trained_by,
)
from recommender.registry._promotion import PromotionEvent, promotion_log_path, read_promotion_log
from recommender.registry._runs import Registration, TrainingRun
from recommender.registry._store import (
    EXPERIMENT_NAME,
    MODEL_NAME,
    StoreBusy,
    artifact_location,
    client,
    ensure_experiment,
    mlflow_session,
    tracking_uri,
)

from recommender._locations import shown_location

__all__ = [
    "shown_location",
    "CHALLENGER",
    "CHAMPION",
    "EXPERIMENT_NAME",
    "MODEL_NAME",
    "GateDecision",
    "ModelRef",
    "PolicyValue",
    "PromotionEvent",
    "Registration",
    "StoreBusy",
    "TrainedVersion",
    "TrainingRun",
    "aliases",
    "artifact_location",
    "champion_concerns",
    "champion_event",
    "client",
    "complete_interrupted",
    "ensure_experiment",
    "estimate",
    "fetch_card",
    "gate_decision",
    "load_champion",
    "load_model",
    "load_pyfunc",
    "mlflow_session",
    "move_alias",
    "policy_value_scores",
    "promote",
    "promotion_history",
    "promotion_log_path",
    "read_promotion_log",
    "resolve_model",
    "rollback",
    "rollback_target",
    "run_concern",
    "run_tags",
    "tracking_uri",
    "versions_trained_by",
]
