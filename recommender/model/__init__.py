"""The fitted recommendation bundle: one uplift model per outcome, the feature schema, the catalog version.

It knows nothing of MLflow; :mod:`recommender.registry` wraps it as a pyfunc model. Requests are
encoded once (:meth:`RecommendationModel.encode`) and predicted and explained from that
encoding by the learners compiled into one pass (:class:`Prediction`).
"""

from recommender.model._basis import estimate_basis
from recommender.model._carried import (
    CarriedModel,
    arm_source,
    carry_arms,
    learnt_arms,
)
from recommender.model._compatibility import (
    arms_not_learnt,
    catalog_difference,
    new_request_fields,
    unlearnt_arms,
)
from recommender.model._evidence import (
    EvidenceEstimate,
    evidence_estimates,
    evidence_model,
    no_evidence_for_role,
    roles_without_evidence,
)
from recommender.model._facts import (
    CARRIED_CHOICE,
    chosen_candidates,
    data_source,
    model_facts,
    model_min_cell,
    one_effect_arms,
)
from recommender.model._prediction import Prediction
from recommender.model._recommendation import JUDGEMENT_COLUMNS, RecommendationModel
from recommender.model._renamed import (
    RenamedArms,
    formerly,
    renamed_for,
    renaming_note,
    served_under,
)
from recommender.model._role_support import (
    ARM_ROLE_KEY,
    arm_rows_within_role,
    thin_arms_by_role,
)
from recommender.model._schema import feature_schema, frame_from_schema
from recommender.model._support import (
    OUTSIDE_COLUMN,
    SupportCheck,
    extrapolation_note,
    support_check,
    training_support,
)

__all__ = [
    "ARM_ROLE_KEY",
    "arm_rows_within_role",
    "thin_arms_by_role",
    "JUDGEMENT_COLUMNS",
    "OUTSIDE_COLUMN",
    "CarriedModel",
    "arm_source",
    "carry_arms",
    "arms_not_learnt",
    "catalog_difference",
    "unlearnt_arms",
    "CARRIED_CHOICE",
    "chosen_candidates",
    "estimate_basis",
    "learnt_arms",
    "EvidenceEstimate",
    "no_evidence_for_role",
    "roles_without_evidence",
    "Prediction",
    "RecommendationModel",
    "RenamedArms",
    "SupportCheck",
    "data_source",
    "evidence_estimates",
    "evidence_model",
    "extrapolation_note",
    "feature_schema",
    "frame_from_schema",
    "model_facts",
    "model_min_cell",
    "new_request_fields",
    "one_effect_arms",
    "formerly",
    "renamed_for",
    "renaming_note",
    "served_under",
    "support_check",
    "training_support",
]
