"""The interval's arithmetic pinned exactly: half-width, jackknife, held-out bias, scale, X weights.

Each test recomputes by hand what the fitted attributes imply, so a change in the formula (half
the variance, another jackknife factor, the X-learner's weights swapped) fails here even where
the coverage tests, which tolerate a few points, would not notice.
"""

import copy

import numpy as np
import pytest
from scipy.stats import norm

from recommender.uplift import UpliftModel
from recommender.uplift._intervals import (
    DISAGREEMENT_WEIGHT,
    bootstrap_replicates,
    WINSORIZE,
    dr_squared_error,
    error_floor,
    held_out_bias,
    held_out_bias_terms,
    jackknife_variance,
    plausible_disagreement,
)
from recommender.uplift._synthetic import make_uplift_cohort
from recommender.uplift._x import side_weights

ARMS = ("none", "coaching", "mindfulness")


def test_jackknife_variance_by_hand():
    # three fold effects 1, 2, 4: mean 7/3, squared deviations 16/9, 1/9, 25/9 (sum 42/9);
    # the delete-a-group jackknife multiplies by (K - 1) / K = 2/3: 28/9
    folds = np.array([1.0, 2.0, 4.0]).reshape(3, 1, 1)
    assert jackknife_variance(folds)[0, 0] == pytest.approx(28 / 9, rel=1e-12)
    # K = 5 folds 0, 0, 0, 0, 5: mean 1, squared deviations 1, 1, 1, 1, 16 (sum 20); x 4/5 = 16
    folds = np.array([0.0, 0.0, 0.0, 0.0, 5.0]).reshape(5, 1, 1)
    assert jackknife_variance(folds)[0, 0] == pytest.approx(16.0, rel=1e-12)


@pytest.fixture(scope="module")
def small():
    X, t, y, p, oracle = make_uplift_cohort(1500, arms=ARMS, seed=21, noise=3.0)
    model = UpliftModel(learner="auto", n_folds=3).fit(X, t, y, propensity=p)
    return model, X.head(300)


def test_half_width_is_exactly_z_times_the_root_of_the_documented_variance(small):
    model, X = small
    M = model.encoder_.transform(X)
    folds = model.estimator_.fold_effects(M)  # (K, n, arms)
    K = folds.shape[0]
    jackknife = (K - 1) / K * ((folds - folds.mean(axis=0)) ** 2).sum(axis=0)
    shrunk = 0.5 * jackknife + 0.5 * model.typical_variance_
    half_disagreement = DISAGREEMENT_WEIGHT * model.disagreement_variance_
    slope = model.bias_slope_variance_
    # an arm given one effect for everyone takes the largest of its undetected spread, half
    # the disagreement and the slope term (all three measure the same spread); a personalized
    # arm adds half the disagreement and the slope term
    one_effect = np.maximum.reduce(
        [model.undetected_variance_ * model.interval_scale_, half_disagreement, slope]
    )
    extra = np.where(model.undetected_variance_ > 0, one_effect, half_disagreement + slope)
    extra = extra + model.bias_average_variance_
    # no person's whole variance below the arm's error floor
    floor = np.maximum(model.variance_floor_, model.error_floor_ - extra)
    variance = np.maximum(shrunk * model.interval_scale_, floor) + extra
    for alpha in (0.1, 0.32):
        lower, upper = model.predict_interval(X, alpha=alpha)
        half = (upper - lower).to_numpy() / 2
        np.testing.assert_allclose(half, norm.ppf(1 - alpha / 2) * np.sqrt(variance), rtol=1e-10)
        centre = (upper + lower).to_numpy() / 2
        np.testing.assert_allclose(centre, model.predict_effect(X).to_numpy(), atol=1e-10)


def test_combine_is_the_step_predict_interval_takes(small):
    model, X = small
    M = model.encoder_.transform(X)
    effect, lower, upper = model._combine(
        model.estimator_.effect(M), model.estimator_.fold_effects(M), 0.1
    )
    lo, hi = model.predict_interval(X, alpha=0.1)
    np.testing.assert_array_equal(lower, lo.to_numpy())
    np.testing.assert_array_equal(upper, hi.to_numpy())


def test_no_interval_narrower_than_the_arms_average_effect(small):
    model, X = small
    lower, upper = model.predict_interval(X, alpha=0.1)
    half = (upper - lower).to_numpy() / 2
    assert (half >= norm.ppf(0.95) * np.sqrt(model.variance_floor_) * (1 - 1e-12)).all()


def test_held_out_bias_by_hand():
    # residuals rho = pseudo - oof = 1, 2, 3, 6 along f = -1, -1, 1, 1 (mean 0, spread 1):
    # mean 3, sample variance 14/3, so the average's term is 9 - (14/3)/4 = 47/6;
    # slope mean(rho * f) / 1 = 1.5, fit errors -0.5, 0.5, -1.5, 1.5, robust standard error
    # sqrt(mean(e^2 f^2) / 4) = sqrt(1.25 / 4); the slope's term is (1.5 + z se)^2 * 1
    pseudo = np.array([[1.0], [2.0], [3.0], [6.0]])
    oof = np.zeros((4, 1))
    f = np.array([[-1.0], [-1.0], [1.0], [1.0]])
    se = np.sqrt(1.25 / 4)
    raw = {"winsorize": None}  # the residuals as they are
    assert held_out_bias(pseudo, oof, f, z=0.0, **raw)[0] == pytest.approx(
        47 / 6 + 1.5**2, rel=1e-12
    )
    assert held_out_bias(pseudo, oof, f, z=0.5, **raw)[0] == pytest.approx(
        47 / 6 + (1.5 + 0.5 * se) ** 2, rel=1e-12
    )
    average, slope = held_out_bias_terms(pseudo, oof, f, z=0.5, **raw)
    assert (average[0], slope[0]) == pytest.approx((47 / 6, (1.5 + 0.5 * se) ** 2), rel=1e-12)
    # an effect the same for everyone (no spread along f) has no slope term
    flat = np.ones((4, 1))
    assert held_out_bias(pseudo, oof, flat, z=0.5, **raw)[0] == pytest.approx(47 / 6, rel=1e-12)


def test_held_out_bias_clips_the_residuals_at_their_quantiles_by_hand():
    # residuals 1, 2, 3, 6: their 25 % and 75 % quantiles (linear rule) are 1.75 and 3.75, so
    # they are read as 1.75, 2, 3, 3.75: mean 2.625, sample variance 2.5625 / 3 (squared
    # deviations 0.765625, 0.390625, 0.140625, 1.265625); the average's term 2.625² - that / 4
    pseudo = np.array([[1.0], [2.0], [3.0], [6.0]])
    average, _ = held_out_bias_terms(
        pseudo, np.zeros((4, 1)), np.ones((4, 1)), winsorize=(0.25, 0.75)
    )
    assert average[0] == pytest.approx(2.625**2 - 2.5625 / 3 / 4, rel=1e-12)
    # by default at 2.5 % and 97.5 %: one residual of 25 standard deviations among 4,000
    # reads as about 2, not as an offset of 0.025 / 4000 x 25 sd
    rng = np.random.default_rng(2)
    residual = rng.normal(size=(4000, 1))
    residual[0] = 25.0
    clipped, _ = held_out_bias_terms(residual, np.zeros_like(residual), np.ones_like(residual))
    assert WINSORIZE == (0.025, 0.975)
    kept = np.clip(residual[:, 0], *np.quantile(residual[:, 0], WINSORIZE))
    assert clipped[0] == pytest.approx(
        max(kept.mean() ** 2 - kept.var(ddof=1) / 4000, 0.0), abs=1e-15
    )


def test_held_out_bias_recovers_a_planted_shrinkage_and_offset():
    rng = np.random.default_rng(0)
    n = 50_000
    truth = rng.normal(0, 1, size=(n, 3))
    pseudo = truth + rng.normal(0, 3, size=(n, 3))  # unbiased, noisy, like a DR score
    oof = truth.copy()
    oof[:, 1] = 0.5 * truth[:, 1]  # shrunk by half: bias 0.5 * truth, squared 0.25
    oof[:, 2] = truth[:, 2] + 0.3  # off by 0.3 for everyone: squared 0.09
    bias = held_out_bias(pseudo, oof, oof, z=0.0, winsorize=None)
    # the slope along the shrunk effect is 1 (rho = 0.5 truth = oof): 1^2 * Var(oof) = 0.25
    assert bias[1] == pytest.approx(0.25, abs=0.02)
    assert bias[2] == pytest.approx(0.09, abs=0.01)
    assert bias[0] < 0.002  # an unbiased effect: only noise, the average term unbiased
    # the default adds half a standard error of the slope: a little more, never less
    default = held_out_bias(pseudo, oof, oof, winsorize=None)
    assert (default >= bias).all() and (default - bias < 0.01).all()
    # clipped at 2.5 / 97.5 % it still sees both biases, a little smaller (clipping the
    # noise's tails pulls the slope and the offset in: 0.21 and 0.081 with this seed)
    clipped = held_out_bias(pseudo, oof, oof, z=0.0)
    assert 0.18 < clipped[1] < 0.25
    assert 0.07 < clipped[2] < 0.09
    assert clipped[0] < 0.002


def test_plausible_disagreement_by_hand():
    chosen = np.array([0.0, 1.0, 2.0, 3.0])
    # one candidate 1 above everywhere (squared distance 1), one 2 below on half the rows (2)
    candidates = np.array([[1.0, 2.0, 3.0, 4.0], [-2.0, -1.0, 2.0, 3.0]])
    assert plausible_disagreement(candidates, chosen) == pytest.approx(1.5, rel=1e-12)
    # the chosen candidate itself adds 0; a row a candidate could not score is left out
    candidates = np.array([chosen, [1.0, np.nan, 3.0, 4.0]])
    assert plausible_disagreement(candidates, chosen) == pytest.approx(0.5, rel=1e-12)


def test_disagreement_is_that_of_the_candidates_the_loss_cannot_tell_apart(small):
    model, _ = small
    assert model.disagreement_variance_.shape == (len(model.arms_),)
    assert (model.disagreement_variance_ >= 0).all()
    # an ensemble of several candidates disagrees with its own average: more than nothing
    table = model.selection_
    for j, arm in enumerate(model.arms_):
        if table[(table["arm"] == arm) & table["chosen"]].shape[0] > 1:
            assert model.disagreement_variance_[j] > 0


def test_bootstrap_replicates_follow_the_row_budget():
    assert bootstrap_replicates(100_000) == 1
    assert bootstrap_replicates(20_000) == 1
    assert bootstrap_replicates(10_000) == 2
    assert bootstrap_replicates(747) == 4


def test_x_learner_side_weights_on_an_unbalanced_trial():
    # 70 % control, 30 % arm: the arm side (targets from the control model, the larger
    # group's) weighs 0.7, the control side 0.3
    assert side_weights(300, 700) == pytest.approx((0.7, 0.3))
    rng = np.random.default_rng(4)
    X, _, _, _, _ = make_uplift_cohort(2000, arms=("none", "coaching"), seed=4)
    t = np.where(rng.random(2000) < 0.7, "none", "coaching").astype(object)
    y = 0.05 * X["ee"].to_numpy() - 1.0 * (t == "coaching") + rng.normal(0, 1, 2000)
    model = UpliftModel(
        learner="x", ensemble_size=1, design="randomized", calibrate_intervals=False
    ).fit(X, t, y)
    arm_side, control_side = model.estimator_.chosen[0][0].parts[0]
    n_arm, n_control = int((t == "coaching").sum()), int((t == "none").sum())
    assert arm_side.weight == pytest.approx(n_control / (n_arm + n_control), rel=1e-12)
    assert control_side.weight == pytest.approx(n_arm / (n_arm + n_control), rel=1e-12)
    assert arm_side.weight > 0.65


def test_dr_squared_error_by_hand():
    # two arms' worth of rows: control (code 0) and arm 1; received 0.5 everywhere
    codes = np.array([0, 1, 0, 1])
    y = np.array([1.0, 3.0, 0.0, 2.0])
    mu = np.array([[0.0, 2.0], [0.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    received = np.full(4, 0.5)
    # residuals (y − μ_T) / e: 2, 2, −2, 0; ψ = μ_1 − μ_0 ± residual: 0, 4, 3, 1
    pseudo = np.array([[0.0], [4.0], [3.0], [1.0]])
    oof = np.array([[1.0], [1.0], [1.0], [1.0]])
    # (ψ − τ̂)² − r²: 1 − 4, 9 − 4, 4 − 4, 0 − 0 = −3, 5, 0, 0
    mse, se = dr_squared_error(pseudo, oof, codes, y, mu, received)
    assert mse[0] == pytest.approx(0.5, rel=1e-12)
    assert se[0] == pytest.approx(np.std([-3.0, 5.0, 0.0, 0.0], ddof=1) / 2, rel=1e-12)


def test_error_floor_by_hand():
    estimate, se = np.array([-0.1]), np.array([0.02])
    # worlds' misses 0.30, 0.32, 0.28, 0.30: mean 0.30, se between them sqrt(8e-4 / 3) / 2
    steady = np.array([[0.30], [0.32], [0.28], [0.30]])
    se_miss = np.std(steady[:, 0], ddof=1) / 2
    assert se_miss <= se[0]
    np.testing.assert_allclose(error_floor(estimate, se, steady), [0.2], rtol=1e-12)
    # the worlds disagree more than the held-out estimate's own error: no floor
    unsteady = np.array([[0.20], [0.40], [0.20], [0.40]])
    np.testing.assert_array_equal(error_floor(estimate, se, unsteady), [0.0])
    # one replicate: its spread is unknown, no floor
    np.testing.assert_array_equal(error_floor(estimate, se, steady[:1]), [0.0])
    # a floor within 2 standard errors of 0 is not read: 0.13 − 0.1 = 0.03 < 2 se(F)
    near = steady - 0.17
    assert 0 < 0.03 < 2 * np.sqrt(se[0] ** 2 + se_miss**2)
    np.testing.assert_array_equal(error_floor(estimate, se, near), [0.0])
    # never negative
    np.testing.assert_array_equal(error_floor(estimate, se, steady - 0.5), [0.0])


def test_error_floor_is_recomputed_from_the_fitted_attributes(small):
    model, _ = small
    calibration = model.interval_calibration_
    assert calibration["world_miss"].shape == (calibration["replicates"], len(model.arms_))
    np.testing.assert_array_equal(
        model.error_floor_,
        error_floor(
            calibration["held_out_mse"], calibration["held_out_mse_se"], calibration["world_miss"]
        ),
    )


def test_half_width_follows_the_error_floor_where_it_binds(small):
    model, X = small
    floored = copy.deepcopy(model)
    lower, upper = model.predict_interval(X)
    wide = ((upper - lower).to_numpy() / 2).max(axis=0)
    # a floor above every person's variance: every half-width is z sqrt(floor)
    floored.error_floor_ = (wide / norm.ppf(0.95)) ** 2 * 4
    lower, upper = floored.predict_interval(X)
    half = (upper - lower).to_numpy() / 2
    np.testing.assert_allclose(
        half,
        np.broadcast_to(norm.ppf(0.95) * np.sqrt(floored.error_floor_), half.shape),
        rtol=1e-12,
    )
