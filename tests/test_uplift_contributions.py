"""Contributions decompose exactly the effect difference they explain, for every learner."""

import numpy as np
import pytest

from recommender.errors import InputError
from recommender.uplift import RidgeSpec
from recommender.uplift._synthetic import make_uplift_cohort
from fitted_fixtures import fitted_uplift

ARMS = ("none", "coaching", "mindfulness", "peer_group")
COHORT = dict(n=2400, arms=ARMS, seed=21)


@pytest.fixture(scope="module")
def cohort():
    return make_uplift_cohort(**COHORT)


@pytest.fixture(scope="module", params=["t", "x", "dr", "ridge-dr"])
def model(request):
    if request.param == "ridge-dr":
        # a linear final stage decomposes as coefficient x centred value
        return fitted_uplift(
            COHORT,
            propensity=False,
            learner="dr",
            n_folds=3,
            final_candidates=(RidgeSpec(alpha=3.0),),
        )
    return fitted_uplift(COHORT, learner=request.param, n_folds=3)


@pytest.mark.parametrize(
    "arm, versus",
    [
        ("coaching", None),
        ("mindfulness", "none"),
        ("coaching", "peer_group"),
        ("none", "mindfulness"),
        ("peer_group", "peer_group"),
    ],
)
def test_contributions_sum_to_the_effect_difference(cohort, model, arm, versus):
    X = cohort[0].iloc[:300]
    effect = model.predict_effect(X)
    effect["none"] = 0.0
    parts = model.contributions(X, arm, versus=versus)
    assert list(parts.columns) == [*model.feature_names_, "base"]
    assert parts.index.equals(X.index)
    expected = effect[arm] - effect[versus or "none"]
    np.testing.assert_allclose(parts.sum(axis=1), expected, atol=1e-6, rtol=0)


def test_contributions_point_at_the_features_that_drive_the_effect(cohort):
    X = cohort[0]
    # the "t" model the parametrized tests explain, fitted once for all three
    model = fitted_uplift(COHORT, learner="t", n_folds=3)
    parts = model.contributions(X.iloc[:500], "coaching").drop(columns="base")
    importance = parts.abs().mean()
    # coaching's effect depends on role and ee only; 'unrelated' is pure noise
    assert importance["role"] > importance["unrelated"]
    assert importance["ee"] > importance["unrelated"]


def test_unknown_arm_is_named(cohort):
    X = cohort[0]
    # the "t" model the parametrized tests explain, fitted once for all three
    model = fitted_uplift(COHORT, learner="t", n_folds=3)
    with pytest.raises(InputError, match="unknown arm 'yoga'.*coaching"):
        model.contributions(X.head(), "yoga")
    with pytest.raises(InputError, match="unknown versus arm 'yoga'"):
        model.contributions(X.head(), "coaching", versus="yoga")


def test_merged_boosters_predict_and_explain_exactly_the_averaged_models(cohort, model):
    # predictions run on one merged booster per arm; they must equal the sum of the parts
    X = cohort[0].iloc[:200]
    M = model.encoder_.transform(X)
    estimator = model.estimator_
    fast = estimator.fast_parts
    try:
        merged_effect = estimator.effect(M)
        merged_parts = estimator.contrib(M, 1)
        estimator.fast_parts = None
        np.testing.assert_allclose(merged_effect, estimator.effect(M), rtol=0, atol=1e-9)
        np.testing.assert_allclose(merged_parts, estimator.contrib(M, 1), rtol=0, atol=1e-9)
    finally:
        estimator.fast_parts = fast


def test_merging_handles_single_leaf_trees_and_negative_weights():
    import lightgbm as lgb

    from recommender.uplift._regressors import GBMModel, merge_gbm

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    # min_child_samples=40 on 50 rows leaves trees without any split (a single leaf)
    stumps = lgb.train(
        dict(objective="regression", verbose=-1, min_child_samples=40), lgb.Dataset(X, y), 5
    )
    deep = lgb.train(
        dict(objective="regression", verbose=-1, min_child_samples=5), lgb.Dataset(X, y), 5
    )
    merged = merge_gbm([(0.5, GBMModel(stumps)), (-2.0, GBMModel(deep))])
    np.testing.assert_allclose(
        merged.predict(X), 0.5 * stumps.predict(X) - 2 * deep.predict(X), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        merged.contrib(X),
        0.5 * stumps.predict(X, pred_contrib=True) - 2 * deep.predict(X, pred_contrib=True),
        rtol=0,
        atol=1e-12,
    )
