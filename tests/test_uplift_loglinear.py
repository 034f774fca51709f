"""The log-linear outcome model: tried only for positive outcomes, chosen where it predicts
better, extrapolating an exponential surface that trees and straight lines cannot, and
explained exactly."""

import numpy as np
import pandas as pd
import pytest

from recommender.errors import InputError
from recommender.uplift import GBMSpec, LogLinearSpec, RidgeSpec, UpliftModel
from recommender.uplift._linear import LogLinearModel
from recommender.uplift._synthetic import make_uplift_cohort


def exponential_cohort(n, seed, *, spread=1.0):
    """IHDP's shape: the control outcome grows exponentially, the treated one barely moves."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{k}": rng.normal(0, spread, n) for k in range(1, 6)})
    X["site"] = pd.Categorical(rng.choice(["a", "b", "c"], n), categories=["a", "b", "c"])
    site = X["site"].cat.codes.to_numpy()
    control_mean = np.exp(2.0 + 0.6 * X["x1"] + 0.3 * X["x2"] + 0.2 * (site == 2))
    treated_mean = 12.0 + 0.3 * X["x3"]
    treated = rng.random(n) < 0.3
    mean = np.where(treated, treated_mean, control_mean)
    y = mean * np.exp(rng.normal(0, 0.05, n))  # positive, multiplicative noise
    truth = treated_mean - control_mean * np.exp(0.05**2 / 2)
    return X, np.where(treated, "treated", "none"), y, pd.DataFrame({"treated": truth})


@pytest.fixture(scope="module")
def cohort():
    return exponential_cohort(1500, seed=3)


@pytest.fixture(scope="module")
def beyond():
    # people further out than anyone in training: x1 up to about 3.6 standard deviations
    X, _, _, truth = exponential_cohort(400, seed=4, spread=1.8)
    return X, truth


@pytest.fixture(scope="module")
def default_model(cohort):
    X, t, y, _ = cohort
    return UpliftModel(learner="t", random_state=0).fit(X, t, y)


def test_chosen_for_the_exponential_arm_by_held_out_error(default_model):
    table = default_model.outcome_selection_
    chosen = table[table["chosen"]].set_index("arm")["settings"]
    assert chosen["none"].startswith("log-linear")
    tried = table.groupby("arm")["settings"].apply(list)
    assert any(s.startswith("log-linear") for s in tried["none"])


def test_extrapolates_where_trees_and_lines_cannot(cohort, beyond, default_model):
    X, t, y, _ = cohort
    without = UpliftModel(
        learner="t",
        random_state=0,
        outcome_candidates=(GBMSpec(num_leaves=7, min_child_samples=40), RidgeSpec(alpha=1.0)),
    ).fit(X, t, y)
    test_X, truth = beyond

    def root_pehe(model):
        effect = model.predict_effect(test_X)["treated"]
        return float(np.sqrt(np.mean((effect - truth["treated"]) ** 2)))

    with_log, without_log = root_pehe(default_model), root_pehe(without)
    assert with_log < 0.25 * without_log, (with_log, without_log)


def test_contributions_sum_exactly_even_where_the_prediction_is_clipped(default_model, beyond):
    test_X, _ = beyond
    far = test_X.copy()
    far.loc[far.index[:20], "x1"] = 40.0  # exp would overflow the training range: clipped
    effect = default_model.predict_effect(far)["treated"]
    parts = default_model.contributions(far, "treated")
    assert np.isfinite(parts.to_numpy()).all()
    np.testing.assert_allclose(parts.sum(axis=1), effect, rtol=1e-9, atol=1e-9)


def test_model_contributions_are_integrated_gradients_from_the_mean():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(500, 3))
    M[:, 2] = rng.integers(0, 3, 500)
    y = np.exp(1.0 + 0.5 * M[:, 0] - 0.2 * M[:, 1] + 0.3 * (M[:, 2] == 1))
    model = LogLinearModel.fit(M, y, None, [2], alpha=1e-6)
    np.testing.assert_allclose(model.predict(M), y, rtol=1e-3)
    parts = model.contrib(M)
    np.testing.assert_allclose(parts.sum(axis=1), model.predict(M), rtol=1e-12)
    # a person at the mean in every number but one owes the whole change to that one
    numeric = LogLinearModel.fit(M[:, :2], y, None, [], alpha=1e-6)
    one_off = numeric.design.means[None, :].copy()
    one_off[0, 0] += 1.0
    parts = numeric.contrib(one_off)[0]
    assert parts[1] == pytest.approx(0.0, abs=1e-12)
    assert parts[2] == pytest.approx(np.exp(numeric.intercept), rel=1e-12)  # the base
    assert parts[0] == pytest.approx(numeric.predict(one_off)[0] - parts[2], rel=1e-9)


def test_never_tried_for_outcomes_that_are_not_all_positive():
    X, t, y, p, _ = make_uplift_cohort(1200, arms=("none", "coaching"), seed=5)
    assert (y < 0).any()
    model = UpliftModel(learner="t", n_folds=3).fit(X, t, y, propensity=p)
    assert not model.outcome_selection_["settings"].str.startswith("log-linear").any()
    refused = r"no outcome model candidate suits arm 'none'.*log-linear"
    with pytest.raises(InputError, match=refused):
        UpliftModel(learner="t", n_folds=3, outcome_candidates=(LogLinearSpec(),)).fit(
            X, t, y, propensity=p
        )


def test_refused_as_a_final_stage_whose_targets_are_signed():
    X, t, y, p, _ = make_uplift_cohort(600, arms=("none", "coaching"), seed=6)
    with pytest.raises(InputError, match=r"final_candidates with \['log-linear.*outcome model"):
        UpliftModel(learner="dr", final_candidates=(LogLinearSpec(),)).fit(X, t, y)
