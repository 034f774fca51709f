"""Intervals: shape, ordering, and honest coverage of the true effects on a known cohort."""

import numpy as np
import pytest

from recommender.uplift import UpliftModel
from recommender.uplift._synthetic import make_uplift_cohort

ARMS = ("none", "coaching", "mindfulness", "peer_group")


@pytest.fixture(scope="module")
def fitted():
    X, t, y, p, _ = make_uplift_cohort(6000, arms=ARMS, seed=17, noise=4.0)
    return UpliftModel(learner="auto", n_folds=5).fit(X, t, y, propensity=p)


@pytest.fixture(scope="module")
def fresh():
    X, _, _, _, oracle = make_uplift_cohort(3000, arms=ARMS, seed=18, noise=4.0)
    return X, oracle


def test_interval_frames_match_effects_and_contain_them(fitted, fresh):
    X, _ = fresh
    effect = fitted.predict_effect(X)
    lower, upper = fitted.predict_interval(X, alpha=0.1)
    for frame in (lower, upper):
        assert list(frame.columns) == list(effect.columns) and frame.index.equals(X.index)
    assert (lower.to_numpy() <= effect.to_numpy()).all()
    assert (effect.to_numpy() <= upper.to_numpy()).all()
    assert (upper.to_numpy() - lower.to_numpy() > 0).all()


def test_narrower_level_gives_narrower_intervals(fitted, fresh):
    X, _ = fresh
    lo90, hi90 = fitted.predict_interval(X, alpha=0.1)
    lo50, hi50 = fitted.predict_interval(X, alpha=0.5)
    assert ((hi50 - lo50).to_numpy() < (hi90 - lo90).to_numpy()).all()


def test_ninety_percent_intervals_cover_most_true_effects(fitted, fresh):
    X, oracle = fresh
    lower, upper = fitted.predict_interval(X, alpha=0.1)
    covered = ((lower <= oracle[lower.columns]) & (oracle[lower.columns] <= upper)).to_numpy()
    # averaged over 9,000 person-arm pairs (0.93 with this seed); too narrow intervals (the
    # bare jackknife gets 0.82 on one arm here, 0.70 on the default scenario) or uselessly
    # wide ones fall outside
    assert 0.85 <= covered.mean() <= 0.98, covered.mean(axis=0)
    assert (fitted.interval_scale_ >= 1).all()


def test_bootstrap_scale_widens_the_bare_jackknife(fitted, fresh):
    X, _ = fresh
    params = fitted.get_params()
    params["calibrate_intervals"] = False
    Xtrain, t, y, p, _ = make_uplift_cohort(6000, arms=ARMS, seed=17, noise=4.0)
    bare = UpliftModel(**params).fit(Xtrain, t, y, propensity=p)
    lo, hi = bare.predict_interval(X)
    lo_c, hi_c = fitted.predict_interval(X)
    assert ((hi_c - lo_c).to_numpy() >= (hi - lo).to_numpy() - 1e-12).all()
    np.testing.assert_allclose(bare.predict_effect(X), fitted.predict_effect(X))


def test_one_scale_for_every_arm_bounded_by_the_pooled_ratio(fitted):
    scale = fitted.interval_scale_
    pooled = fitted.interval_calibration_["pooled_ratio"]
    ratios = (fitted.interval_calibration_["bootstrap_mse"]
              / fitted.interval_calibration_["bootstrap_jackknife_variance"])
    assert np.allclose(scale, scale[0])
    # the largest arm's ratio, never below the pooled one nor above twice it, and at least 1
    assert scale[0] == pytest.approx(max(min(max(ratios.max(), pooled), 2 * pooled), 1.0))

