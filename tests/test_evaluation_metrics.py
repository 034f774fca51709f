"""Pure evaluation metrics against hand-computed answers and known truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from recommender.errors import InputError
from recommender.evaluation import (
    MIN_CELL,
    age_band,
    calibration_bins,
    calibration_slope,
    learned_policy,
    mean_estimate,
    pehe_table,
    policy_value,
    qini_curve,
    qini_terms,
    subgroup_table,
)
from recommender.evaluation._policy_value import (
    average_effects,
    personalization_gain,
    policy_value_table,
)
from recommender.evaluation._qini import qini_table
from _evaluation_synthetic import synthetic_trial

SCORES = pd.DataFrame({"none": [0.0, 1.0, 2.0, 1.0], "a": [-1.0, 0.0, 0.0, -3.0]})


def test_policy_value_and_interval_by_hand():
    # terms -(Γ_π - Γ_none): 1, 0, 2, 4 -> mean 1.75, sd sqrt(8.75 / 3)
    est = policy_value(SCORES, ["a", "none", "a", "a"], alpha=0.1)
    se = np.sqrt(8.75 / 3) / 2
    assert est.estimate == pytest.approx(1.75)
    assert est.se == pytest.approx(se)
    assert est.lower == pytest.approx(1.75 - 1.6448536 * se)
    assert est.upper == pytest.approx(1.75 + 1.6448536 * se)
    estimate, lower, upper = est
    assert (estimate, lower, upper) == (est.estimate, est.lower, est.upper)


def test_control_for_all_is_exactly_zero_and_random_averages_arms():
    table = policy_value_table(SCORES, ["a"] * 4)
    assert table.loc["all:none", ["estimate", "lower", "upper"]].tolist() == [0.0, 0.0, 0.0]
    # random: half a, half none -> -(mean(Γ_a) - mean(Γ_none)) / 2 = (1 + 1 + 2 + 4) / 4 / 2
    assert table.loc["random", "estimate"] == pytest.approx(1.0)
    assert table.loc["all:a", "estimate"] == table.loc["learned", "estimate"] == 2.0


def test_learned_policy_picks_lowest_effect_and_control_when_nothing_helps():
    effects = pd.DataFrame({"a": [-1.0, 0.5, 0.0, -3.0], "b": [-2.0, 0.1, 0.0, -3.0]})
    assert learned_policy(effects, control="usual").tolist() == ["b", "usual", "usual", "a"]


def test_assignment_naming_an_unknown_arm_is_refused():
    with pytest.raises(InputError, match="zumba"):
        policy_value(SCORES, ["a", "zumba", "a", "a"])
    with pytest.raises(InputError, match="alpha"):
        mean_estimate([1.0, 2.0], alpha=1.5)


def test_policy_value_intervals_cover_at_the_nominal_rate():
    # 400 independent trials of 600 people: the 90% interval for the value of "targeted for
    # those with x > 0" must cover its true value (mean of 2|x| over x > 0 → 0.5) about 90%.
    hits = []
    for seed in range(400):
        trial = synthetic_trial(600, seed=seed)
        policy = np.where(trial["x"] > 0, "targeted", "none")
        hits.append(
            policy_value(trial["scores"], policy, alpha=0.1).lower
            <= 0.5
            <= policy_value(trial["scores"], policy, alpha=0.1).upper
        )
    assert 0.86 <= np.mean(hits) <= 0.94


def test_personalization_gain_is_paired_and_against_the_best_single_arm():
    trial = synthetic_trial(6000, seed=1)
    oracle = learned_policy(trial["truth"])
    gain, best, fold_arms = personalization_gain(trial["scores"], oracle, alpha=0.1)
    assert best == "steady" and fold_arms == ["steady"] * 5
    # truth: oracle value E[max(1, 2x, 0)] = 1 + E[(2x-1)+]/... = 1 + 0.125; steady gives 1
    assert gain.lower > 0 and gain.lower < 0.125 < gain.upper
    unpaired_se = np.hypot(
        policy_value(trial["scores"], oracle).se,
        policy_value(trial["scores"], ["steady"] * 6000).se,
    )
    assert gain.se < unpaired_se


def test_cross_fitted_choice_of_the_best_arm_keeps_the_gain_unbiased_when_nothing_works():
    # Six inert arms and a policy that always picks control: the true gain is exactly 0.
    # Choosing the "best" arm on the scoring rows would make the gain about -E[max of the
    # noisy arm values] and call personalization worse; out of fold it must not.
    gains, hits, same_data = [], [], []
    for seed in range(120):
        rng = np.random.default_rng(seed)
        scores = pd.DataFrame(
            rng.normal(0, 4, (1000, 6)), columns=["none", "a", "b", "c", "d", "e"]
        )
        gain, _, _ = personalization_gain(scores, ["none"] * 1000, random_state=seed)
        gains.append(gain.estimate)
        hits.append(gain.lower <= 0 <= gain.upper)
        values = -(scores.to_numpy() - scores[["none"]].to_numpy()).mean(axis=0)
        same_data.append(-values.max())
    assert abs(np.mean(gains)) < 3 * np.std(gains) / np.sqrt(len(gains))
    # the bootstrap standard error is a little conservative when arms are exactly tied
    assert 0.88 <= np.mean(hits) <= 0.99
    assert np.mean(same_data) < -0.1  # the bias same-data selection would have had


def test_average_effects_recover_the_truth_with_simultaneous_intervals_wider():
    trial = synthetic_trial(6000, seed=2)
    table = average_effects(trial["scores"], alpha=0.1)
    assert table.loc["steady", "lower"] < -1.0 < table.loc["steady", "upper"]
    assert table.loc["targeted", "lower"] < 0.0 < table.loc["targeted", "upper"]
    assert (table["lower_simultaneous"] < table["lower"]).all()
    z_ratio = norm.ppf(1 - 0.1 / 4) / norm.ppf(1 - 0.1 / 2)
    width = table["upper"] - table["lower"]
    wide = table["upper_simultaneous"] - table["lower_simultaneous"]
    assert (wide / width).to_numpy() == pytest.approx([z_ratio] * 2)


def test_qini_toy_example_by_hand():
    benefit = [3.0, -1.0, 2.0, 0.0]
    predicted = [0.9, 0.1, 0.5, 0.3]
    curve = qini_curve(benefit, predicted, points=5)
    # ranked benefits 3, 2, 0, -1 over n = 4
    assert curve["qini"].tolist() == pytest.approx([0, 0.75, 1.25, 1.25, 1.0])
    assert curve["random"].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    # AUUC 4.25 / 4, random (n + 1) / (2n) * mean = 0.625, difference 0.4375
    assert qini_terms(benefit, predicted).mean() == pytest.approx(0.4375)
    table, _ = qini_table(
        pd.DataFrame({"none": [0.0] * 4, "a": [-b for b in benefit]}),
        pd.DataFrame({"a": [-p for p in predicted]}),
    )
    assert table.loc["a", "auuc"] == pytest.approx(1.0625)
    assert table.loc["a", "auuc_random"] == pytest.approx(0.625)
    assert table.loc["a", "qini"] == pytest.approx(0.4375)


def test_qini_is_zero_for_constant_predictions_and_sign_follows_the_ranking():
    assert qini_terms([3.0, -1.0, 2.0], [0.0, 0.0, 0.0]).sum() == 0.0
    trial = synthetic_trial(6000, seed=3)
    truth = trial["truth"][["targeted"]]
    good, _ = qini_table(trial["scores"], truth, true_effects=truth)
    bad, _ = qini_table(trial["scores"], -truth)
    assert good.loc["targeted", "lower"] > 0
    assert bad.loc["targeted", "upper"] < 0
    assert good.loc["targeted", "qini_share_of_oracle"] == 1.0
    # the truth for targeted: ∫ φ (mean of 2x over the top φ) - 0 dφ = 1/3 (x ~ U(-1, 1))
    assert good.loc["targeted", "lower"] < 1 / 3 < good.loc["targeted", "upper"]


def test_calibration_bins_by_hand_and_slope_of_known_lines():
    table = calibration_bins([4, 1, 3, 2], [40.0, 10.0, 30.0, 20.0], n_bins=2)
    assert table["observed"].tolist() == [15.0, 35.0]
    assert table.loc[1, "lower"] == pytest.approx(15 - 1.6448536 * 5.0)
    ragged = calibration_bins(np.arange(23), np.arange(23.0), n_bins=10)
    assert ragged["n"].tolist() == [3, 3, 3] + [2] * 7
    assert calibration_slope([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0]).estimate == pytest.approx(2)
    assert np.isnan(calibration_slope([1, 1, 1, 1], [1.0, 2.0, 3.0, 4.0]).estimate)
    trial = synthetic_trial(6000, seed=4)
    dr = trial["scores"]["targeted"] - trial["scores"]["none"]
    right = calibration_slope(trial["truth"]["targeted"], dr)
    halved = calibration_slope(trial["truth"]["targeted"] * 2, dr)
    assert right.lower < 1 < right.upper
    assert halved.lower < 0.5 < halved.upper


def test_pehe_coverage_and_width_by_hand():
    pred = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 1.0, 1.0, 1.0]})
    true = pd.DataFrame({"a": [0.0, 1.0, 2.0, 7.0], "b": [0.0, 2.0, 1.0, 1.0]})
    table = pehe_table(pred, true, pred - 1, pred + 0.5)
    assert table.loc["a", "pehe"] == pytest.approx(2.0)  # sqrt(16 / 4)
    assert table.loc["b", "pehe"] == pytest.approx(np.sqrt(0.5))
    assert table.loc["a", "coverage"] == 0.75
    assert table.loc["b", "coverage"] == 0.75  # 0 sits on the bound (inside), 2 is outside
    assert table["mean_width"].tolist() == [1.5, 1.5]


def _subgroup_case(n_small: int):
    sizes = {"nurse": 30, "physician": 20, "resident": n_small}
    groups = pd.DataFrame({"role": [r for r, k in sizes.items() for _ in range(k)]})
    groups["gender"] = "female"
    n = len(groups)
    return subgroup_table(groups, ["a"] * n, [-1.0] * n, np.linspace(0, 1, n), arms=("none", "a"))


def test_subgroup_cells_under_eleven_are_suppressed():
    assert MIN_CELL == 11
    ten = _subgroup_case(10).set_index(["grouping", "cell"])
    eleven = _subgroup_case(11).set_index(["grouping", "cell"])
    for key in [("role", "resident"), ("role x gender", "resident x female")]:
        assert ten.loc[key, "suppressed"] and ten.loc[key, "suppression"] == "small cell"
        assert ten.loc[key].drop(["suppressed", "suppression"]).isna().all()  # n blank too
        assert not eleven.loc[key, "suppressed"]
        assert eleven.loc[key, "n"] == 11
        assert eleven.loc[key, "share_a"] == 1.0
    assert not ten.loc[("role", "nurse"), "suppressed"]
    assert ten.loc[("gender", "female"), "n"] == 60
    # with only the resident cell hidden, 60 - 30 - 20 would reveal it: physicians go too
    assert ten.loc[("role", "physician"), "suppression"] == "complementary"
    assert np.isnan(ten.loc[("role", "physician"), "n"])
    assert not eleven.loc[("role", "physician"), "suppressed"]


def test_qini_interval_covers_zero_for_a_random_ranking_at_the_nominal_rate():
    hits = []
    for seed in range(200):
        trial = synthetic_trial(800, seed=seed)
        benefit = -(trial["scores"]["steady"] - trial["scores"]["none"]).to_numpy()
        ranking = np.random.default_rng(seed + 1000).normal(size=800)
        est = mean_estimate(qini_terms(benefit, ranking))
        hits.append(est.lower <= 0 <= est.upper)
    # the per-term variance includes the spread of the terms' means: a little conservative
    assert 0.87 <= np.mean(hits) <= 0.97


def test_intersection_cells_are_protected_against_row_and_column_subtraction():
    # resident x male has 5 people; residents' and men's totals are published elsewhere, so a
    # second cell must go in the resident row and in the male column.
    sizes = {
        ("nurse", "female"): 40,
        ("nurse", "male"): 30,
        ("resident", "female"): 25,
        ("resident", "male"): 5,
        ("physician", "female"): 20,
        ("physician", "male"): 50,
    }
    groups = pd.DataFrame(
        [key for key, k in sizes.items() for _ in range(k)], columns=["role", "gender"]
    )
    n = len(groups)
    table = subgroup_table(groups, ["a"] * n, [-1.0] * n, np.zeros(n), arms=("none", "a"))
    cross = table[table["grouping"] == "role x gender"].set_index("cell")["suppression"]
    assert cross["resident x male"] == "small cell"
    # the resident row and the male column each need a second hidden cell, and so does the
    # row of whichever cell the column hides: the smallest safe pattern is a 2 x 2 block
    hidden = set(cross[cross != ""].index)
    assert len(hidden) == 4 and {"resident x male", "resident x female"} <= hidden
    # every row and column now hides zero or at least two cells
    for part in ["resident", "nurse", "physician", "female", "male"]:
        hidden = sum(bool(v) for c, v in cross.items() if part in c.split(" x "))
        assert hidden != 1, part
    assert not table[table["grouping"] == "role"]["suppressed"].any()


def test_age_bands():
    assert list(age_band([18, 29, 30, 49, 50, 59, 60, 90])) == [
        "18-29",
        "18-29",
        "30-39",
        "40-49",
        "50-59",
        "50-59",
        "60+",
        "60+",
    ]
