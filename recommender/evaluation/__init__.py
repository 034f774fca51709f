"""Evaluation of recommendations without an oracle: doubly robust policy values, Qini,
calibration and subgroup tables, plus PEHE, regret and coverage when true effects exist."""

from recommender.evaluation._calibration import calibration_bins, calibration_slope
from recommender.evaluation._evaluate import evaluate, evaluate_effects
from recommender.evaluation._off_policy import (
    MIN_TAIL_ROWS,
    OFF_POLICY_METHODS,
    OffPolicyEstimate,
    off_policy_values,
    unservable,
)
from recommender.evaluation._oracle import pehe_table
from recommender.evaluation._policy_value import (
    Estimate,
    learned_policy,
    mean_estimate,
    personalization_gain,
    policy_scores,
    policy_value,
)
from recommender.evaluation._predicted import of_recommended, predicted_mean
from recommender.evaluation._qini import qini_curve, qini_terms
from recommender.evaluation._report import EvaluationReport, metric_key
from recommender.evaluation._subgroups import (
    MIN_CELL,
    age_band,
    subgroup_frame,
    subgroup_labels,
    subgroup_table,
)

__all__ = [
    "evaluate",
    "evaluate_effects",
    "EvaluationReport",
    "Estimate",
    "learned_policy",
    "policy_value",
    "policy_scores",
    "mean_estimate",
    "predicted_mean",
    "of_recommended",
    "personalization_gain",
    "qini_curve",
    "qini_terms",
    "calibration_bins",
    "calibration_slope",
    "pehe_table",
    "subgroup_table",
    "subgroup_frame",
    "subgroup_labels",
    "age_band",
    "metric_key",
    "MIN_CELL",
    "MIN_TAIL_ROWS",
    "OFF_POLICY_METHODS",
    "OffPolicyEstimate",
    "off_policy_values",
    "unservable",
]
