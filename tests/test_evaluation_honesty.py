"""Honesty checks end to end: simulator -> UpliftModel -> evaluate on a held-out cohort.

The report must not find personalization where effects are the same for everyone
(``homogeneous``), must not find any arm better than none where nothing works (``null``), and
must find personalization where effects differ (``default``). Seeds are fixed; sizes are
chosen so each answer is decisive (figures measured are in the comments).
"""

from __future__ import annotations

import numpy as np
import pytest

from recommender.cohort import feature_frame
from recommender.evaluation import EvaluationReport, evaluate, subgroup_frame
from recommender.simulate import load_scenario, simulate_cohort
from recommender.uplift import GBMSpec, UpliftModel

pytestmark = pytest.mark.slow

# One small booster keeps the fit to seconds; the learners' own tests cover their tuning.
SMALL_GBM = (GBMSpec(num_leaves=7, min_child_samples=50, learning_rate=0.1, max_rounds=200),)


def _parts(cohort):
    X = feature_frame(cohort)
    arm = cohort["intervention"].astype(str).to_numpy()
    change = (cohort["ee_followup"] - cohort["ee"]).to_numpy(dtype=float)
    return X, arm, change, cohort["propensity"].to_numpy(dtype=float)


def _held_out_report(scenario: str, n: int) -> EvaluationReport:
    spec = load_scenario(scenario)
    train = simulate_cohort(spec, n, seed=1)
    test = simulate_cohort(spec, n, seed=2)
    X, arm, change, propensity = _parts(train)
    model = UpliftModel(
        learner="dr", n_folds=3, outcome_candidates=SMALL_GBM, final_candidates=SMALL_GBM
    ).fit(X, arm, change, propensity=propensity)
    X, arm, change, propensity = _parts(test)
    truth = test[[f"true_effect_{a}" for a in model.arms_]]
    return evaluate(
        model,
        X,
        arm,
        change,
        propensity=propensity,
        oracle=truth,
        groups=subgroup_frame(test),
        n_folds=3,
    )


@pytest.fixture(scope="module")
def homogeneous() -> EvaluationReport:
    return _held_out_report("homogeneous", 8000)


@pytest.fixture(scope="module")
def null() -> EvaluationReport:
    return _held_out_report("null", 8000)


@pytest.fixture(scope="module")
def default() -> EvaluationReport:
    return _held_out_report("default", 16000)


def test_homogeneous_effects_are_not_sold_as_personalization(homogeneous):
    # measured: gain -0.08 (90% CI -0.23 to 0.08); coaching for 94.9%
    report = homogeneous
    assert not report.personalization_adds_value
    assert report.gain.lower <= 0 <= report.gain.upper
    assert report.statement.startswith(
        "Personalization adds nothing measurable over giving everyone coaching"
    )
    assert report.recommendation_mix.idxmax() == "coaching"
    assert report.recommendation_mix.max() >= 0.90


def test_null_effects_find_no_arm_better_than_none(null):
    # measured: every simultaneous interval straddles 0; gain -0.48 (-1.17 to 0.21)
    report = null
    assert "No arm is measurably better than none" in report.statement
    assert (report.average_effects["upper_simultaneous"] >= 0).all()
    assert not report.personalization_adds_value
    assert report.policy_values.loc["learned", "lower"] <= 0


def test_heterogeneous_effects_are_found_and_beat_random(default):
    # measured: gain 0.54 (0.24 to 0.84) over coaching; learned 4.5 vs random 2.0 EE points
    report = default
    assert report.personalization_adds_value
    assert report.statement.startswith("Personalization adds ")
    values = report.policy_values
    assert values.loc["learned", "lower"] > values.loc["random", "upper"] + 1.0
    assert report.oracle["share_of_oracle"] > 0.8
    # the estimates agree with the truth the simulator knows
    for policy in ("learned", "random", "all:coaching"):
        assert (
            values.loc[policy, "lower"]
            <= values.loc[policy, "true_value"]
            <= values.loc[policy, "upper"]
        )
    shown = report.subgroups[~report.subgroups["suppressed"]]
    assert (shown["n"] >= 11).all()
    # an arm given one effect for everyone (no heterogeneity established) has no ranking to
    # calibrate; the clearly heterogeneous arm does. Coaching only: since the scenario took
    # physicians' mindfulness from Fendel 2021 (-2.5) and bounds DP effects, the nurse-physician
    # gap in mindfulness is 2.3 points instead of 2.7, and this small fit (16,000, one small
    # booster) gives mindfulness one effect for everyone (measured: coaching slope 1.29, 90 % CI
    # 1.02 to 1.55; mindfulness not personalized).
    assert np.isfinite(report.calibration_slopes["estimate"][["coaching"]]).all()


def test_one_arm_policies_give_the_arm_only_where_it_is_offered():
    """A learned policy that respects eligibility is compared with one-arm policies that do:
    coaching (3 points) is offered to half the people, mindfulness (2 points) to everyone, so
    the learned policy (coaching where offered, mindfulness elsewhere: 2.5) beats every policy a
    program could run with one arm (coaching where offered: 1.5; mindfulness: 2). Compared with
    coaching given to everyone, offered or not (3), it read as 'measurably worse'."""
    import pandas as pd

    from recommender.evaluation import evaluate_effects

    n = 4000
    rng = np.random.default_rng(0)
    offered = np.arange(n) % 2 == 0
    noise = rng.normal(0.0, 1.0, (n, 3))
    scores = pd.DataFrame(
        {"none": noise[:, 0], "coaching": -3.0 + noise[:, 1], "mindfulness": -2.0 + noise[:, 2]}
    )
    effects = pd.DataFrame({"coaching": np.full(n, -3.0), "mindfulness": np.full(n, -2.0)})
    eligible = pd.DataFrame({"coaching": offered, "mindfulness": np.ones(n, dtype=bool)})
    truth = pd.DataFrame({"coaching": np.full(n, -3.0), "mindfulness": np.full(n, -2.0)})
    report = evaluate_effects(effects, scores, eligible=eligible, oracle=truth)
    values = report.policy_values
    assert values.loc["learned", "true_value"] == pytest.approx(2.5)
    assert values.loc["all:coaching", "true_value"] == pytest.approx(1.5)
    assert values.loc["all:mindfulness", "true_value"] == pytest.approx(2.0)
    assert values.loc["oracle", "true_value"] == pytest.approx(2.5)  # the best offered arm
    assert report.best_single_arm == "mindfulness"
    assert report.personalization_adds_value  # +0.5, its interval well above 0
    assert "giving mindfulness to everyone it is offered to" in report.personalization_statement
    assert any("only to the people the catalog offers it to" in note for note in report.notes)
    # without the catalog's eligibility, every policy may give any arm to anyone (as before)
    free = evaluate_effects(effects, scores, oracle=truth)
    assert free.policy_values.loc["all:coaching", "true_value"] == pytest.approx(3.0)
    assert not free.offered_only and "giving everyone" in free.personalization_statement
