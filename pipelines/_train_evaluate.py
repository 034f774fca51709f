"""The evaluation stage: the fitted model measured on the held-out part with doubly robust
scores, for the primary outcome and every secondary one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines._train_cohort import Cohort, Split, _outcome_change, _propensity, learner_design
from pipelines._train_config import LOWER_IS_BETTER

__all__ = ["Evaluation", "evaluate_stage"]


@dataclass
class Evaluation:
    """What the evaluation stage measured on the held-out part."""

    report: object
    dr_scores: pd.DataFrame
    effects: pd.DataFrame
    recommended: np.ndarray
    secondary: pd.DataFrame
    metrics: dict = field(default_factory=dict)
    # the model's own interval of ``effects`` at the evaluation's level (the card's fairness
    # table gives each group's predicted benefit with it)
    effect_lower: pd.DataFrame | None = None
    effect_upper: pd.DataFrame | None = None


def evaluate_stage(model, split: Split, cohort: Cohort, config: dict) -> Evaluation:
    """Evaluate on the held-out part against doubly robust scores fitted there.

    The report measures the arms the model learnt; arms carried over from an earlier model
    (a run from the log) have no held-out rows to measure them by. The policy the gate and the
    card value is the model's whole policy: where it picks a carried arm, that arm is valued
    by its carried estimate (:func:`pipelines._train_carry.scores_with_estimates`), and
    ``dr_scores`` holds those columns too.
    """
    from pipelines._train_carry import scores_with_estimates
    from recommender.evaluation import evaluate_effects, subgroup_frame
    from recommender.model import learnt_arms
    from recommender.registry import estimate, policy_value_scores
    from recommender.uplift import doubly_robust_scores

    holdout = split.holdout
    X = model.feature_frame(holdout)
    treatment = holdout["intervention"].astype(str).to_numpy()
    alpha, folds, seed = (
        config["evaluation"]["alpha"],
        config["evaluation"]["n_folds"],
        config["seed"],
    )
    control = cohort.catalog.control
    primary = model.outcome_models[model.primary]
    effects = primary.predict_effect(X)[list(model.treatment_arms)]
    lower, upper = primary.predict_interval(X, alpha=alpha)

    def scores_for(outcome):
        return doubly_robust_scores(
            X,
            treatment,
            _outcome_change(holdout, outcome),
            propensity=_propensity(holdout),
            control=control,
            n_folds=folds,
            random_state=seed,
            design=learner_design(cohort),
        )

    dr_scores = scores_for(model.primary)
    learnt = learnt_arms(model)
    oracle_columns = [f"true_effect_{arm}" for arm in learnt]
    oracle = None
    if all(c in holdout.columns for c in oracle_columns):
        oracle = holdout[oracle_columns].set_axis(learnt, axis=1)
    # The evaluation and the gate value the policy the service serves: eligible arms only.
    eligible = model.eligibility(holdout)
    report = evaluate_effects(
        effects[learnt],
        dr_scores,
        lower=lower[learnt],
        upper=upper[learnt],
        oracle=oracle,
        groups=subgroup_frame(holdout),
        alpha=alpha,
        control=control,
        random_state=seed,
        eligible=None if eligible is None else eligible[learnt],
        min_cell=config["card"]["min_cell"],
    )
    recommended = model.recommend(effects, eligible=eligible).to_numpy()
    dr_scores = scores_with_estimates(dr_scores, effects, control=control)

    rows = []
    for outcome in model.outcomes:
        if outcome == model.primary:
            scores = dr_scores
        else:
            outcome_effects = model.outcome_models[outcome].predict_effect(X)
            scores = scores_with_estimates(scores_for(outcome), outcome_effects, control=control)
        values = policy_value_scores(
            scores, recommended, control=control, lower_is_better=LOWER_IS_BETTER[outcome]
        )
        # A carried arm without an estimate for this outcome (published evidence gives EE
        # only) leaves its people out of this outcome's value.
        valued = np.isfinite(values)
        gained = estimate(values[valued], alpha=alpha)
        rows.append(
            {
                "outcome": outcome,
                "better_when": "lower" if LOWER_IS_BETTER[outcome] else "higher",
                "points_improved": gained.estimate,
                "lower": gained.lower,
                "upper": gained.upper,
                "rows": int(valued.sum()),
            }
        )
    secondary = pd.DataFrame(rows)
    metrics = dict(report.metrics())
    # The report counts the learnt arms' policy; MLflow, like the card's mix, gets the shares
    # of the policy the model serves, carried arms included.
    for arm in model.arms:
        metrics[f"recommendation_share.{arm}"] = float(np.mean(recommended == arm))
    for row in rows:
        for key in ("points_improved", "lower", "upper"):
            suffix = "" if key == "points_improved" else f".{key}"
            metrics[f"outcome_improved.{row['outcome']}{suffix}"] = row[key]
    return Evaluation(
        report=report,
        dr_scores=dr_scores,
        effects=effects,
        recommended=recommended,
        secondary=secondary,
        metrics=metrics,
        effect_lower=lower[list(model.treatment_arms)],
        effect_upper=upper[list(model.treatment_arms)],
    )
