"""Explanations: top contributions in EE points, one sentence, the catalog's evidence."""

import pytest

from recommender.catalog import load_catalog
from recommender.explain import evidence_for, explain, top_contributions, top_contributions_many

PROFILE = {"role": "physician", "ee": 33, "weekly_hours": 62.0, "age": 40}


def test_top_contributions_by_size_without_base_or_zeros():
    top = top_contributions(
        {"role": -1.5, "age": 0.0, "ee": 0.9, "weekly_hours": -0.2, "base": -9.0}, PROFILE, top=2
    )
    assert [(c.feature, c.value, c.points) for c in top] == [
        ("role", "physician", -1.5),
        ("ee", 33, 0.9),
    ]


def test_sentence_names_arm_size_interval_and_reasons():
    e = explain(
        recommended="coaching",
        runner_up="peer_group",
        effect=-4.2,
        lower=-7.0,
        upper=-1.4,
        runner_up_effect=-1.0,
        versus_usual_care={"role": -2.0, "ee": -1.0, "base": -1.2},
        versus_runner_up={"weekly_hours": -0.6, "base": -2.6},
        profile=PROFILE,
        names={"coaching": "Professional coaching", "peer_group": "Peer group"},
    )
    assert e.sentence.startswith(
        "Professional coaching is expected to lower emotional "
        "exhaustion by 4.2 points (90% interval: between 1.4 and 7.0 "
        "points lower)"
    )
    assert "role physician (-2.0)" in e.sentence
    assert "3.2 points better than Peer group" in e.sentence
    assert "weekly hours 62 (-0.6)" in e.sentence
    assert [c.feature for c in e.versus_runner_up] == ["weekly_hours"]


def test_interval_reaching_zero_is_said_in_words():
    e = explain(
        recommended="coaching",
        runner_up="none",
        effect=-1.0,
        lower=-2.5,
        upper=0.5,
        runner_up_effect=0.0,
        versus_usual_care={"ee": -1.0},
        versus_runner_up=None,
        profile=PROFILE,
    )
    assert "from 2.5 points lower to 0.5 points higher" in e.sentence
    assert "better than" not in e.sentence  # the runner-up is usual care: said once


def _usual_care_best(versus_runner_up, runner_up_effect):
    # Points of usual care minus the closest arm (mindfulness): negative ones raise its EE.
    return explain(
        recommended="none",
        runner_up="mindfulness",
        effect=0.0,
        lower=0.0,
        upper=0.0,
        runner_up_effect=runner_up_effect,
        versus_usual_care=None,
        versus_runner_up=versus_runner_up,
        profile=PROFILE,
    )


def test_usual_care_recommended_names_the_closest_arm():
    e = _usual_care_best({"ee": -0.5, "role": -0.3}, 0.8)
    assert e.versus_usual_care == ()
    assert e.sentence.startswith(
        "No offered intervention is expected to lower emotional exhaustion more than usual care"
    )
    assert "mindfulness (+0.8 points" in e.sentence


@pytest.mark.parametrize("arm", load_catalog().treatment_arms)
def test_every_arm_has_citable_evidence(arm):
    items = evidence_for(load_catalog(), arm)
    assert items and all(item["citation"] for item in items)


def _coaching(versus_usual_care, versus_runner_up=None, runner_up_effect=-1.0, effect=-3.7):
    return explain(
        recommended="coaching",
        runner_up="peer_group",
        effect=effect,
        lower=effect - 2.0,
        upper=effect + 2.0,
        runner_up_effect=runner_up_effect,
        versus_usual_care=versus_usual_care,
        versus_runner_up=versus_runner_up,
        profile=PROFILE,
        names={"coaching": "Professional coaching", "peer_group": "Peer group"},
    )


def test_a_contribution_pulling_against_the_benefit_is_not_called_a_reason_for_it():
    # Contributions are shares of the distance from the arm's average: the +1.3 makes this
    # person's benefit smaller, so "because of ... (+1.3)" said the opposite of the figure.
    e = _coaching({"role": -2.0, "ee": 1.3, "weekly_hours": -0.4, "base": -2.6})
    assert "because of" not in e.sentence
    assert (
        "compared with usual care; for this profile role physician (-2.0) and weekly hours 62 "
        "(-0.4) make the benefit larger than its average and emotional exhaustion score 33 (+1.3) "
        "makes it smaller."
    ) in e.sentence


def test_a_contribution_narrowing_the_lead_is_said_to_narrow_it():
    e = _coaching({"role": -2.0, "base": -1.7}, {"ee": 0.8, "role": -1.5, "base": -2.0})
    assert (
        "It is expected to do 2.7 points better than Peer group; for this profile role "
        "physician (-1.5) widens the lead and emotional exhaustion score 33 (+0.8) narrows it."
    ) in e.sentence
    assert "mainly because of" not in e.sentence


def test_usual_care_best_says_what_holds_the_closest_arm_back_and_what_works_for_it():
    e = _usual_care_best({"weekly_hours": -1.1, "ee": 0.6}, 0.2)
    assert e.sentence.endswith(
        "(+0.2 points against usual care), and for this profile weekly hours 62 (-1.1) holds "
        "it back and emotional exhaustion score 33 (+0.6) works for it."
    )


def test_rounding_left_in_one_effect_for_everyone_is_no_reason():
    # An arm given one effect for everyone: its contributions are zero but for floating-point
    # rounding, which the answers listed and the sentence cited as "weekly hours 62 (+0.0)".
    noise = {"role": 3e-13, "ee": -2e-12, "weekly_hours": 0.0004, "base": -1.669}
    assert top_contributions(noise, PROFILE) == ()
    assert top_contributions_many(
        [[3e-13, -2e-12, 0.0004, -1.669]], ["role", "ee", "weekly_hours"], [PROFILE]
    ) == [()]
    many = top_contributions_many(
        [[3e-13, -2e-12, 0.049, -1.669]] * 10, ["role", "ee", "weekly_hours"], [PROFILE] * 10
    )
    assert many == [()] * 10  # the batch path too (0.049 reads +0.0)
    e = _coaching(noise, effect=-1.669)
    assert e.versus_usual_care == ()
    assert "(+0.0)" not in e.sentence and "(-0.0)" not in e.sentence
    assert "compared with usual care. It is expected" in e.sentence


def test_a_lead_under_a_tenth_of_a_point_is_not_called_better():
    e = _coaching({"role": -2.0, "base": -1.7}, None, runner_up_effect=-3.68)
    assert "0.0 points better" not in e.sentence
    assert (
        "It is expected to do about as well as Peer group (less than 0.1 points apart)."
        in e.sentence
    )
