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
def bare(fitted):
    """The same model with the bare (uncalibrated) jackknife intervals."""
    params = fitted.get_params()
    params["calibrate_intervals"] = False
    Xtrain, t, y, p, _ = make_uplift_cohort(6000, arms=ARMS, seed=17, noise=4.0)
    return UpliftModel(**params).fit(Xtrain, t, y, propensity=p)


def _coverage(model, X, oracle):
    lower, upper = model.predict_interval(X, alpha=0.1)
    truth = oracle[lower.columns]
    return ((lower <= truth) & (truth <= upper)).mean()


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
    # averaged over 9,000 person-arm pairs (0.97 with this seed); too narrow intervals (the
    # bare jackknife gets 0.82 on one arm here, 0.70 on the default scenario) or uselessly
    # wide ones fall outside
    assert 0.85 <= covered.mean() <= 0.98, covered.mean(axis=0)
    assert (fitted.interval_scale_ >= 1).all()


def test_every_personalised_arm_covers_at_least_80_percent(fitted, fresh):
    X, oracle = fresh
    coverage = _coverage(fitted, X, oracle)
    chosen = fitted.selection_[fitted.selection_["chosen"]]
    constant = set(chosen.loc[chosen["settings"].str.startswith("constant"), "arm"])
    personalised = [arm for arm in fitted.arms_ if arm not in constant]
    # coaching (role and severity) and mindfulness (nurse-specific) are personalised here;
    # with this seed the worst covers 0.95 (0.84 with half the variance)
    assert {"coaching", "mindfulness"} <= set(personalised)
    assert (coverage[personalised] >= 0.80).all(), coverage.to_dict()


def test_uncalibrated_jackknife_undercovers_the_nurse_specific_arm(bare, fresh):
    X, oracle = fresh
    coverage = _coverage(bare, X, oracle)
    # without the bootstrap scale (scale 1; the floor, the held-out bias and the candidates'
    # disagreement stay) the intervals cover 0.951 overall and 0.898 of the nurse-specific arm
    # with this seed (the calibrated ones 0.971 and 0.954); half the variance would give 0.889
    # and 0.754, no disagreement term 0.921 and 0.811
    assert (bare.interval_scale_ == 1).all()
    assert 0.93 <= coverage.mean() <= 0.97, coverage.to_dict()
    assert 0.87 <= coverage["mindfulness"] <= 0.93, coverage.to_dict()


def test_bootstrap_scale_widens_the_bare_jackknife(fitted, bare, fresh):
    X, _ = fresh
    lo, hi = bare.predict_interval(X)
    lo_c, hi_c = fitted.predict_interval(X)
    assert ((hi_c - lo_c).to_numpy() >= (hi - lo).to_numpy() - 1e-12).all()
    np.testing.assert_allclose(bare.predict_effect(X), fitted.predict_effect(X))


def test_each_arm_takes_its_own_bootstrap_ratio_never_below_one(fitted):
    calibration = fitted.interval_calibration_
    ratios = calibration["bootstrap_mse"] / calibration["bootstrap_jackknife_variance"]
    np.testing.assert_allclose(fitted.interval_scale_, np.maximum(ratios, 1.0), rtol=1e-12)
    # arms differ here: one scale for every arm (the largest arm's) over-covered elsewhere
    assert len(set(np.round(fitted.interval_scale_, 6))) > 1
