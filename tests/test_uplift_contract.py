"""UpliftModel follows the estimator contract and recovers known effects, for every learner."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from recommender.uplift import UpliftModel
from recommender.uplift._synthetic import make_uplift_cohort
from fitted_fixtures import fitted_uplift

LEARNERS = ["t", "x", "dr", "auto"]
# tests/test_uplift_auto.py's cohort: the learners fitted on it are fitted once for both
COHORT = dict(n=3000, arms=("none", "coaching", "mindfulness"), seed=3)


@pytest.fixture(scope="module")
def cohort():
    return make_uplift_cohort(**COHORT)


@pytest.fixture(scope="module")
def fitted():
    return {name: fitted_uplift(COHORT, learner=name, n_folds=3) for name in LEARNERS}


@pytest.mark.parametrize("learner", LEARNERS)
def test_parameters_are_stored_unchanged_and_cloneable(learner):
    model = UpliftModel(learner=learner, n_folds=4, propensity_clip=(0.05, 0.95))
    params = model.get_params()
    assert params["learner"] == learner and params["n_folds"] == 4
    assert params["propensity_clip"] == (0.05, 0.95)
    assert clone(model).get_params() == params


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        UpliftModel("t")


def test_constructor_does_not_validate_but_fit_does(cohort):
    X, t, y, p, _ = cohort
    model = UpliftModel(learner="forest", n_folds=1)  # stored as given
    with pytest.raises(ValueError, match="learner='forest'.*n_folds=1"):
        model.fit(X, t, y)


@pytest.mark.parametrize("learner", LEARNERS)
def test_predict_refuses_before_fit(cohort, learner):
    X = cohort[0]
    model = UpliftModel(learner=learner)
    for call in (
        lambda: model.predict_effect(X),
        lambda: model.predict_interval(X),
        lambda: model.contributions(X, "coaching"),
    ):
        with pytest.raises(NotFittedError):
            call()


@pytest.mark.parametrize("learner", LEARNERS)
def test_fit_returns_self_and_sets_learned_attributes(cohort, fitted, learner):
    model = fitted[learner]
    assert isinstance(model, UpliftModel)
    assert model.arms_ == ["coaching", "mindfulness"] and model.control_ == "none"
    assert model.feature_names_ == list(cohort[0].columns)
    assert model.learner_ in ("t", "x", "dr", "mixed")
    assert set(model.arm_learners_) == set(model.arms_)
    for used in model.arm_learners_.values():
        assert set(used.split("+")) <= {"t", "x", "dr"}
    if learner != "auto":
        assert model.learner_ == learner
    assert set(model.selection_.columns) >= {"learner", "settings", "dr_loss", "chosen"}
    X, t, y, p, _ = (part[:600] for part in cohort)  # any cohort will do: 600 rows suffice
    fresh = UpliftModel(learner="t", n_folds=3)
    assert fresh.fit(X, t, y, propensity=p) is fresh


@pytest.mark.parametrize("learner", LEARNERS)
def test_recovers_known_heterogeneous_effects(cohort, fitted, learner):
    X, _, _, _, _ = cohort
    test_X, _, _, _, oracle = make_uplift_cohort(
        2000, arms=("none", "coaching", "mindfulness"), seed=99
    )
    effect = fitted[learner].predict_effect(test_X)
    assert list(effect.columns) == ["coaching", "mindfulness"]
    assert effect.index.equals(test_X.index)
    for arm in effect.columns:
        pehe = np.sqrt(np.mean((effect[arm] - oracle[arm]) ** 2))
        # a constant at the true mean would score sd(oracle): we must explain most of it
        assert pehe < 0.7 * oracle[arm].std(), (arm, pehe)
        assert abs(effect[arm].mean() - oracle[arm].mean()) < 0.3, arm


@pytest.mark.parametrize("learner", ["t", "x", "dr"])
def test_binary_treatment_with_arbitrary_arm_names(learner):
    X, t, y, p, oracle = make_uplift_cohort(1500, arms=(0, "Arm B (2×)"), seed=4)
    model = UpliftModel(learner=learner, control=0, n_folds=3).fit(X, t, y)
    effect = model.predict_effect(X)
    assert list(effect.columns) == ["Arm B (2×)"]
    assert model.control_ == 0
    assert np.corrcoef(effect.iloc[:, 0], oracle.iloc[:, 0])[0, 1] > 0.7


def test_integer_arm_names_and_other_control():
    X, t, y, p, _ = make_uplift_cohort(1500, arms=(7, 3, 5), seed=8)
    model = UpliftModel(learner="t", control=7, n_folds=3).fit(X, t, y, propensity=p)
    assert model.arms_ == [3, 5]
    assert list(model.predict_effect(X.head()).columns) == [3, 5]


@pytest.mark.parametrize("learner", ["auto", "dr"])
def test_same_seed_gives_identical_effects(cohort, fitted, learner):
    X, t, y, p, _ = cohort
    again = UpliftModel(learner=learner, n_folds=3).fit(X, t, y, propensity=p)
    pd.testing.assert_frame_equal(again.predict_effect(X), fitted[learner].predict_effect(X))


def test_columns_in_another_order_are_realigned(cohort, fitted):
    X = cohort[0].head(20)
    shuffled = X[list(reversed(X.columns))]
    pd.testing.assert_frame_equal(
        fitted["t"].predict_effect(shuffled), fitted["t"].predict_effect(X)
    )
