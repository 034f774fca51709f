"""Simulated cohorts: contract columns, types and ranges, determinism, the oracle, the scenarios
and both assignment designs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender import cohort as cohort_package
from recommender.errors import InputError
from recommender.simulate import (
    load_scenario,
    observational_probabilities,
    oracle_columns,
    simulate_cohort,
)

ARMS = ("coaching", "mindfulness", "peer_group", "resilience_training", "balint_group")
PROFILE = (
    "person_id",
    "age",
    "gender",
    "role",
    "specialty",
    "setting",
    "years_in_practice",
    "weekly_hours",
    "ee",
    "dp",
    "pa",
)
TRAINING = ("intervention", "ee_followup", "dp_followup", "pa_followup", "propensity")
RANGES = {
    "age": (18, 90),
    "years_in_practice": (0, 60),
    "weekly_hours": (0, 120),
    "ee": (0, 54),
    "dp": (0, 30),
    "pa": (0, 48),
}


@pytest.fixture(scope="module")
def default():
    return load_scenario("default")


@pytest.fixture(scope="module")
def cohort(default):
    return simulate_cohort(default, 4000, seed=7)


def test_columns_in_contract_order_then_oracle(cohort):
    assert tuple(cohort.columns) == PROFILE + TRAINING + tuple(oracle_columns(ARMS))
    assert oracle_columns(ARMS)[:2] == ["true_effect_coaching", "true_effect_mindfulness"]


def test_types_and_ranges(cohort):
    for column in ("age", "ee", "dp", "pa", "ee_followup", "dp_followup", "pa_followup"):
        assert cohort[column].dtype == np.int64, column
    for column in ("years_in_practice", "weekly_hours", "propensity", *oracle_columns(ARMS)):
        assert cohort[column].dtype == np.float64, column
    for column, (lo, hi) in {
        **RANGES,
        **{f"{s}_followup": RANGES[s] for s in ("ee", "dp", "pa")},
    }.items():
        assert cohort[column].between(lo, hi).all(), column
    assert cohort["propensity"].between(0, 1, inclusive="right").all()
    assert cohort["person_id"].is_unique
    assert (
        cohort["person_id"].iloc[0] == "s7-000001" and cohort["person_id"].iloc[-1] == "s7-004000"
    )
    assert set(cohort["role"].unique()) == {"physician", "resident", "nurse", "app"}
    assert (cohort.loc[cohort["role"] == "resident", "years_in_practice"] == 0).all()


def test_passes_the_cohort_contract(cohort, default):
    for frame in (cohort, simulate_cohort(default, 4000, seed=8, assignment="observational")):
        report = cohort_package.validate_cohort(frame, training=True)
        assert report.ok, report.format()


def test_same_seed_same_cohort_other_seed_other_cohort(default, cohort):
    pd.testing.assert_frame_equal(simulate_cohort(default, 4000, seed=7), cohort)
    other = simulate_cohort(default, 4000, seed=8)
    assert not other["ee"].equals(cohort["ee"])
    assert other["person_id"].iloc[0] == "s8-000001"


def test_a_name_works_like_a_loaded_scenario(cohort):
    pd.testing.assert_frame_equal(simulate_cohort("default", 4000, seed=7), cohort)


def test_homogeneous_gives_everyone_the_same_effects():
    frame = simulate_cohort("homogeneous", 4000, seed=3)
    oracle = frame[oracle_columns(ARMS)]
    assert (oracle.nunique() == 1).all()
    # Arms clearly separated, coaching best.
    first = oracle.iloc[0]
    assert first["true_effect_coaching"] == -4.0
    assert sorted(first[[f"true_effect_{a}" for a in ARMS]]) == [-4.0, -2.5, -2.0, -1.5, -1.0]


def test_null_has_no_effect_anywhere():
    frame = simulate_cohort("null", 4000, seed=3)
    assert (frame[oracle_columns(ARMS)] == 0).all().all()


def test_default_effects_differ_between_people_and_best_arms_differ(default):
    frame = simulate_cohort(default, 20000, seed=4)
    effects = frame[[f"true_effect_{a}" for a in ARMS]].to_numpy()
    best = pd.Series(np.array(ARMS)[effects.argmin(axis=1)], index=frame.index)
    role = frame["role"].astype(str)
    # The heterogeneity of calibration.md: nurses -> mindfulness, mid-career physicians -> coaching,
    # residents split between arms by profile.
    assert (best[role == "nurse"] == "mindfulness").mean() > 0.9
    mid_physicians = (role == "physician") & frame["years_in_practice"].between(5, 30)
    assert (best[mid_physicians] == "coaching").mean() > 0.9
    resident_best = best[role == "resident"].value_counts(normalize=True)
    assert (resident_best > 0.1).sum() >= 3
    # Personalization matters: the best arm per person beats the best single arm by > 0.5 points.
    assert effects.min(axis=1).mean() < effects.mean(axis=0).min() - 0.5
    # Coaching helps physicians more than nurses; mindfulness nurses more than physicians.
    by_role = frame.groupby("role", observed=True)[
        ["true_effect_coaching", "true_effect_mindfulness"]
    ].mean()
    assert (
        by_role.loc["physician", "true_effect_coaching"]
        < by_role.loc["nurse", "true_effect_coaching"]
    )
    assert (
        by_role.loc["nurse", "true_effect_mindfulness"]
        < by_role.loc["physician", "true_effect_mindfulness"]
    )
    # Groups act mainly on DP (relative to the subscale's SD).
    assert (
        frame["true_effect_dp_peer_group"].mean() / 5.5
        < frame["true_effect_peer_group"].mean() / 10
    )


def test_oracle_is_the_expected_latent_difference(default):
    # Where clipping cannot bite (mid-range baselines) the observed mean change under an arm minus
    # under none estimates the mean oracle effect; SE here is about 0.1 points.
    frame = simulate_cohort(default, 200000, seed=9, rct_shares={"none": 0.5, "coaching": 0.5})
    middle = frame[frame["ee"].between(15, 35)]
    change = middle["ee_followup"] - middle["ee"]
    treated = middle["intervention"] == "coaching"
    observed = change[treated].mean() - change[~treated].mean()
    assert observed == pytest.approx(middle.loc[treated, "true_effect_coaching"].mean(), abs=0.35)


def test_rct_propensity_is_the_design_share(default):
    frame = simulate_cohort(
        default, 6000, seed=2, rct_shares={"none": 0.5, "coaching": 0.3, "mindfulness": 0.2}
    )
    shares = {"none": 0.5, "coaching": 0.3, "mindfulness": 0.2}
    assert set(frame["intervention"].astype(str)) == set(shares)
    assert np.allclose(
        frame["propensity"], frame["intervention"].astype(str).map(shares).astype(float)
    )
    counts = frame["intervention"].astype(str).value_counts(normalize=True)
    for arm, share in shares.items():  # SE about 0.0065
        assert counts[arm] == pytest.approx(share, abs=0.03)


def test_observational_propensities_sum_to_one_and_match_frequencies(default):
    frame = simulate_cohort(default, 60000, seed=6, assignment="observational")
    from recommender.simulate._baseline import draw_baseline
    from recommender.simulate._population import draw_people

    # Recompute every arm's probability from the same draws: rows sum to one, the received one
    # is the logged propensity, and the expected arm counts match the empirical ones.
    rng = np.random.default_rng(6)
    people = draw_people(rng, default, len(frame))
    _, baseline = draw_baseline(rng, default, people)
    probabilities = observational_probabilities(default, people, baseline)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.min() >= default.assignment.observational.overlap_floor - 1e-12
    codes = pd.Categorical(frame["intervention"], categories=default.arms).codes
    assert np.allclose(probabilities[np.arange(len(frame)), codes], frame["propensity"])
    expected = probabilities.sum(axis=0)
    observed = np.bincount(codes, minlength=len(default.arms))
    assert np.all(np.abs(observed - expected) < 4 * np.sqrt(expected))
    # Within propensity bins the logged probability matches how often the arm was received.
    for index, arm in enumerate(default.arms):
        p = probabilities[:, index]
        received = codes == index
        for lo, hi in [(0.0, 0.15), (0.15, 0.3), (0.3, 1.0)]:
            chosen = (p >= lo) & (p < hi)
            if chosen.sum() > 500:
                se = np.sqrt(p[chosen].mean() * (1 - p[chosen].mean()) / chosen.sum())
                assert abs(received[chosen].mean() - p[chosen].mean()) < 4 * se, (arm, lo)


def test_observational_is_confounded_as_the_scenario_says(default):
    frame = simulate_cohort(default, 20000, seed=6, assignment="observational")
    role = frame["role"].astype(str)
    arm = frame["intervention"].astype(str)
    assert (arm[role == "physician"] == "coaching").mean() > (
        arm[role == "nurse"] == "coaching"
    ).mean() + 0.1
    assert (arm[role == "nurse"] == "mindfulness").mean() > (
        arm[role == "physician"] == "mindfulness"
    ).mean() + 0.1
    assert frame.loc[arm == "coaching", "ee"].mean() > frame.loc[arm == "none", "ee"].mean() + 1.0
    assert frame["propensity"].min() >= 0.03


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n: the number of people"),
        ({"n": 2.5}, "n: the number of people"),
        ({"seed": -1}, "seed: must be"),
        ({"seed": 10**60}, "seed: must be a whole number from 0 to 9,223,372,036,854,775,807"),
        (
            {"n": 10**30},
            "n: the number of people must be a whole number from 1 to 1,000,000,000,000",
        ),
        ({"assignment": "cluster"}, "assignment: must be one of rct, observational"),
        ({"rct_shares": {"none": 0.5, "yoga": 0.5}}, "arm 'yoga' is not in scenario"),
        ({"rct_shares": {"none": 0.5, "coaching": 0.2}}, "shares must sum to 1"),
        ({"rct_shares": {"none": 1.2, "coaching": -0.2}}, "must be a number >= 0"),
        (
            {"assignment": "observational", "rct_shares": {"none": 1.0}},
            "only used with assignment='rct'",
        ),
    ],
)
def test_bad_arguments_are_input_errors(default, kwargs, message):
    arguments = {"n": 100, "seed": 1, **kwargs}
    with pytest.raises(InputError, match=message):
        simulate_cohort(default, arguments.pop("n"), **arguments)
