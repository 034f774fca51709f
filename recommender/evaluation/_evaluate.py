"""From a fitted model and held-out data to an :class:`EvaluationReport`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.errors import InputError
from recommender.evaluation._calibration import calibration_table
from recommender.evaluation._oracle import oracle_effects, oracle_policy, oracle_summary, pehe_table
from recommender.evaluation._policy_value import (
    _z,
    average_effects,
    learned_policy,
    personalization_gain,
    policy_scores,
    policy_value_table,
)
from recommender.evaluation._predicted import of_recommended
from recommender.evaluation._qini import qini_table
from recommender.evaluation._report import EvaluationReport
from recommender.evaluation._subgroups import MIN_CELL, subgroup_table

__all__ = ["evaluate", "evaluate_effects"]

_NOTES = [
    "Policy values are doubly robust (cross-fitted AIPW scores fitted on the evaluation data "
    "itself), in EE points avoided per person versus usual care for all; intervals are normal "
    "approximations from the per-person score standard deviation.",
    "Personalization gain: learned policy minus the best single arm, where the best arm is "
    "chosen on the other folds of a 5-fold split of the evaluation data and scored on the "
    "held-out fold (choosing and scoring on the same rows would flatter the single arm).",
    "Random assignment draws every arm, control included, with equal probability.",
    "Arms are called better or worse than control from Bonferroni-simultaneous intervals.",
    "Qini: people ranked by predicted benefit; curve = EE points avoided per person when only "
    "the top fraction gets the arm, from doubly robust scores; 'qini' is the area between the "
    "curve and the random line (0 = no better than chance).",
    "Calibration: equal-sized quantile bins of predicted effect; slope of the doubly robust "
    "effect on the prediction (1 = calibrated, 0 = no information about who benefits).",
]

# With the catalog's eligibility, every policy compared is one a program could run.
_OFFERED_ONLY = (
    "One-arm policies ('all:<arm>', the best single arm of the personalization gain) and the "
    "oracle give an arm only to the people the catalog offers it to, usual care to the rest, "
    "as the learned policy does."
)


def _check_rows(name: str, value, n: int) -> None:
    if value is not None and len(value) != n:
        raise InputError(f"{name} has {len(value)} rows but the evaluation data has {n}")


def evaluate_effects(
    effects: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    lower: pd.DataFrame | None = None,
    upper: pd.DataFrame | None = None,
    oracle: pd.DataFrame | None = None,
    groups: pd.DataFrame | None = None,
    alpha: float = 0.1,
    control: str = "none",
    n_bins: int = 10,
    random_state: int = 0,
    eligible: pd.DataFrame | None = None,
    min_cell: int = MIN_CELL,
) -> EvaluationReport:
    """Evaluate predicted effects against doubly robust scores already computed.

    Parameters
    ----------
    effects : DataFrame
        Predicted effect per non-control arm (negative = less exhaustion), one row per person.
    scores : DataFrame
        Cross-fitted AIPW scores for every arm, control included, same rows in the same order.
    lower, upper : DataFrame, optional
        Interval bounds of ``effects`` at level ``1 - alpha`` (for coverage).
    oracle : DataFrame, optional
        True effects per arm, columns ``<arm>`` or ``true_effect_<arm>``.
    groups : DataFrame, optional
        Subgroup columns (role, gender, age_band, setting), same rows in the same order.
    alpha : float
        One minus the coverage of every interval.
    control : str
        The control arm's name.
    n_bins : int
        Quantile bins for calibration.
    random_state : int
        Seed of the folds in which the best single arm is chosen for the personalization gain.
    eligible : DataFrame of bool, optional
        People x arms, same rows in the same order: arms the catalog offers each person. The
        learned policy (its value, mix, subgroups) never recommends an ineligible arm, as the
        service does, and neither do the one-arm policies it is compared with nor the oracle;
        effects, PEHE, Qini and calibration are unaffected.
    min_cell : int
        Subgroup cells with fewer people are suppressed (the card's privacy floor).

    Returns
    -------
    EvaluationReport
    """
    _z(alpha)
    n = len(effects)
    _check_rows("scores", scores, n)
    for name, value in (
        ("lower", lower),
        ("upper", upper),
        ("oracle", oracle),
        ("groups", groups),
        ("eligible", eligible),
    ):
        _check_rows(name, value, n)
    if n < 2:
        raise InputError(f"evaluation needs at least 2 rows, got {n}")
    if control not in scores.columns:
        raise InputError(
            f"doubly robust scores have no column for the control arm "
            f"{control!r}; columns are {list(scores.columns)}"
        )
    missing = [arm for arm in effects.columns if arm not in scores.columns]
    if missing:
        raise InputError(
            f"the model predicts arms {missing} that have no doubly robust score (no rows of "
            f"that arm in the evaluation data?); scored arms are {list(scores.columns)}"
        )
    if not np.isfinite(effects.to_numpy(dtype=float)).all():
        raise InputError("predicted effects contain NaN or infinite values")
    if not np.isfinite(scores.to_numpy(dtype=float)).all():
        raise InputError("doubly robust scores contain NaN or infinite values")

    # Everything is aligned by position: callers pass rows in one order.
    index = pd.RangeIndex(n)
    effects = effects.set_axis(index)
    scores = scores.set_axis(index)
    lower = None if lower is None else lower.set_axis(index)
    upper = None if upper is None else upper.set_axis(index)
    eligible = None if eligible is None else eligible.set_axis(index)

    recommended = learned_policy(effects, control=control, eligible=eligible)
    true_effects = None
    best_policy = None
    if oracle is not None:
        true_effects = oracle_effects(oracle.set_axis(index), effects.columns)
        best_policy = oracle_policy(true_effects, control=control, eligible=eligible)
    values = policy_value_table(
        scores,
        recommended,
        control=control,
        alpha=alpha,
        oracle_policy=best_policy,
        true_effects=true_effects,
        eligible=eligible,
    )
    gain, best_arm, fold_arms = personalization_gain(
        scores,
        recommended,
        control=control,
        alpha=alpha,
        random_state=random_state,
        eligible=eligible,
    )
    qini, curves = qini_table(
        scores, effects, control=control, alpha=alpha, true_effects=true_effects
    )
    bins, slopes = calibration_table(scores, effects, control=control, n_bins=n_bins, alpha=alpha)
    arms = tuple(dict.fromkeys([*scores.columns, *effects.columns]))
    mix = pd.Series({arm: float(np.mean(recommended == arm)) for arm in arms}, name="share")

    pehe = summary = None
    if true_effects is not None:
        pehe = pehe_table(effects, true_effects, lower, upper)
        summary = oracle_summary(pehe, values)

    subgroups = None
    if groups is not None:
        # the model's own interval of the recommended effect is the effect's own
        recommended_effect, effect_lower, effect_upper = (
            None if frame is None else of_recommended(frame, recommended, control=control)
            for frame in (effects, lower, upper)
        )
        subgroups = subgroup_table(
            groups.reset_index(drop=True),
            recommended,
            recommended_effect,
            policy_scores(scores, recommended, control=control),
            arms=arms,
            effect_lower=effect_lower,
            effect_upper=effect_upper,
            alpha=alpha,
            min_cell=min_cell,
        )

    return EvaluationReport(
        alpha=alpha,
        control=control,
        arms=arms,
        n=n,
        policy_values=values,
        gain=gain,
        best_single_arm=best_arm,
        comparator_arms=fold_arms,
        average_effects=average_effects(scores, control=control, alpha=alpha),
        qini=qini,
        qini_curves=curves,
        calibration=bins,
        calibration_slopes=slopes,
        recommendation_mix=mix,
        pehe=pehe,
        oracle=summary,
        subgroups=subgroups,
        notes=list(_NOTES) + ([] if eligible is None else [_OFFERED_ONLY]),
        offered_only=eligible is not None,
    )


def evaluate(
    model,
    X: pd.DataFrame,
    treatment,
    y,
    *,
    propensity=None,
    oracle: pd.DataFrame | None = None,
    groups: pd.DataFrame | None = None,
    alpha: float = 0.1,
    control: str = "none",
    random_state: int = 0,
    n_folds: int = 5,
) -> EvaluationReport:
    """Evaluate a fitted uplift model on held-out data, with no oracle needed.

    Predicted effects (and intervals, when the model has ``predict_interval``) come from
    ``model``; the yardstick is cross-fitted doubly robust scores fitted on this same held-out
    data by :func:`recommender.uplift.doubly_robust_scores`, so the model's own training data
    never grades it.

    Parameters
    ----------
    model : object
        Fitted, with ``predict_effect(X)`` and optionally ``predict_interval(X, alpha)``
        (for example :class:`recommender.uplift.UpliftModel`).
    X : DataFrame
        Held-out features.
    treatment : array-like of str
        Arm each person received.
    y : array-like of float
        Outcome (change in EE from baseline).
    propensity : array-like of float, optional
        Probability of the received arm (design shares in a trial); estimated when absent.
    oracle : DataFrame, optional
        True effects (``<arm>`` or ``true_effect_<arm>`` columns): adds PEHE, regret and
        coverage.
    groups : DataFrame, optional
        Subgroup columns; see :func:`recommender.evaluation.subgroup_frame`.
    alpha : float
        One minus the coverage of every interval (and the model's prediction intervals).
    control : str
        The control arm.
    random_state, n_folds : int
        Cross-fitting of the doubly robust scores.

    Returns
    -------
    EvaluationReport
    """
    from recommender.uplift import doubly_robust_scores

    _z(alpha)
    n = len(X)
    for name, value in (("treatment", treatment), ("y", y), ("propensity", propensity)):
        _check_rows(name, value, n)
    effects = model.predict_effect(X)
    lower = upper = None
    if hasattr(model, "predict_interval"):
        lower, upper = model.predict_interval(X, alpha=alpha)
    scores = doubly_robust_scores(
        X,
        treatment,
        y,
        propensity=propensity,
        control=control,
        n_folds=n_folds,
        random_state=random_state,
    )
    return evaluate_effects(
        effects,
        scores,
        lower=lower,
        upper=upper,
        oracle=oracle,
        groups=groups,
        alpha=alpha,
        control=control,
        random_state=random_state,
    )
